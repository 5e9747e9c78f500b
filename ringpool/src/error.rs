//! Errors: one opaque [`Error`] for building and registering, and small
//! per-operation errors that hand the job back.

use crate::handoff::{Handoff, ParseHandoffError};
use std::any::Any;
use std::fmt;
use std::io;

/// Why building a pool or registering a loop failed.
///
/// Opaque over [`ErrorKind`]; the message says what to change.
#[derive(Debug)]
pub struct Error {
    kind: ErrorKind,
    msg: String,
    source: Option<io::Error>,
}

/// The category of an [`Error`].
#[derive(Copy, Clone, Debug, PartialEq, Eq)]
#[non_exhaustive]
pub enum ErrorKind {
    /// The handoff asked for needs a kernel feature this kernel lacks.
    Unsupported(Handoff),
    /// A builder option or environment override is invalid.
    InvalidConfig,
    /// A system call failed while setting up (the errno is the source).
    Io,
    /// A thread could not be spawned: a pool's worker, or a runtime thread
    /// of [`per_core`](crate::runtime::per_core).
    Spawn,
    /// A loop was registered on one of its own pool's worker threads: its
    /// waits for its jobs would wait for the worker it runs on (with one
    /// worker, for ever).
    OnOwnWorker,
}

impl Error {
    pub(crate) fn new(kind: ErrorKind, msg: impl Into<String>) -> Error {
        Error {
            kind,
            msg: msg.into(),
            source: None,
        }
    }

    pub(crate) fn io(msg: impl Into<String>, e: io::Error) -> Error {
        Error {
            kind: ErrorKind::Io,
            msg: msg.into(),
            source: Some(e),
        }
    }

    pub(crate) fn spawn(e: io::Error) -> Error {
        Error::spawn_of("a worker thread", e)
    }

    /// `what` (a thread) could not be spawned.
    pub(crate) fn spawn_of(what: &str, e: io::Error) -> Error {
        Error {
            kind: ErrorKind::Spawn,
            msg: format!("cannot spawn {what}"),
            source: Some(e),
        }
    }

    /// What went wrong, as a category.
    pub fn kind(&self) -> ErrorKind {
        self.kind
    }
}

impl fmt::Display for Error {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.msg)?;
        if let Some(e) = &self.source {
            write!(f, ": {e}")?;
        }
        Ok(())
    }
}

impl std::error::Error for Error {
    fn source(&self) -> Option<&(dyn std::error::Error + 'static)> {
        self.source.as_ref().map(|e| e as _)
    }
}

impl From<Error> for io::Error {
    fn from(e: Error) -> io::Error {
        let kind = match e.kind {
            ErrorKind::Unsupported(_) => io::ErrorKind::Unsupported,
            ErrorKind::InvalidConfig | ErrorKind::OnOwnWorker => io::ErrorKind::InvalidInput,
            ErrorKind::Io | ErrorKind::Spawn => io::ErrorKind::Other,
        };
        io::Error::new(kind, e)
    }
}

impl From<ParseHandoffError> for Error {
    fn from(e: ParseHandoffError) -> Error {
        Error::new(ErrorKind::InvalidConfig, e.to_string())
    }
}

/// [`LoopHandle::try_submit`](crate::LoopHandle::try_submit) could not take
/// the job; it is handed back unchanged.
#[derive(PartialEq, Eq)]
pub enum TrySubmitError<F> {
    /// This loop already has `max_in_flight` jobs out; reap completions first.
    Full(F),
    /// The pool is shutting down (or this loop is closing).
    Closed(F),
}

impl<F> TrySubmitError<F> {
    /// The job that was not submitted.
    pub fn into_inner(self) -> F {
        match self {
            TrySubmitError::Full(f) | TrySubmitError::Closed(f) => f,
        }
    }

    /// `true` for [`TrySubmitError::Full`].
    pub fn is_full(&self) -> bool {
        matches!(self, TrySubmitError::Full(_))
    }
}

impl<F> fmt::Debug for TrySubmitError<F> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            TrySubmitError::Full(_) => f.write_str("Full(..)"),
            TrySubmitError::Closed(_) => f.write_str("Closed(..)"),
        }
    }
}

impl<F> fmt::Display for TrySubmitError<F> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            TrySubmitError::Full(_) => f.write_str("the loop's in-flight limit is reached"),
            TrySubmitError::Closed(_) => f.write_str("the pool is shut down"),
        }
    }
}

impl<F> std::error::Error for TrySubmitError<F> {}

/// [`LoopHandle::submit`](crate::LoopHandle::submit) could not take the job;
/// it is handed back.
pub enum SubmitError<F> {
    /// The pool is shutting down.
    Closed(F),
    /// Waiting on the ring for room failed.
    Io(io::Error, F),
}

impl<F> SubmitError<F> {
    /// The job that was not submitted.
    pub fn into_inner(self) -> F {
        match self {
            SubmitError::Closed(f) | SubmitError::Io(_, f) => f,
        }
    }
}

impl<F> fmt::Debug for SubmitError<F> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            SubmitError::Closed(_) => f.write_str("Closed(..)"),
            SubmitError::Io(e, _) => write!(f, "Io({e:?}, ..)"),
        }
    }
}

impl<F> fmt::Display for SubmitError<F> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            SubmitError::Closed(_) => f.write_str("the pool is shut down"),
            SubmitError::Io(e, _) => write!(f, "waiting for room failed: {e}"),
        }
    }
}

impl<F> std::error::Error for SubmitError<F> {}

/// A job that never ran, handed back to its owner (shutdown with jobs queued).
///
/// Run it yourself with [`Task::run`], or drop it to drop what it captured.
pub struct Task<R>(Box<dyn FnOnce() -> R + Send>);

impl<R> Task<R> {
    pub(crate) fn new<F: FnOnce() -> R + Send + 'static>(f: F) -> Task<R> {
        Task(Box::new(f))
    }

    /// Runs the job on the calling thread.
    pub fn run(self) -> R {
        (self.0)()
    }
}

impl<R> fmt::Debug for Task<R> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("Task(..)")
    }
}

/// Why a job produced no value.
pub enum JobError<R> {
    /// The job panicked; this is the panic payload. The worker and the pool
    /// kept running.
    Panicked(Box<dyn Any + Send + 'static>),
    /// The job never ran: its loop closed (or the pool shut down) first.
    Cancelled(Task<R>),
}

impl<R> JobError<R> {
    /// The panic message, if the payload is a string.
    pub fn panic_message(&self) -> Option<&str> {
        match self {
            JobError::Panicked(p) => p
                .downcast_ref::<&'static str>()
                .copied()
                .or_else(|| p.downcast_ref::<String>().map(|s| s.as_str())),
            JobError::Cancelled(_) => None,
        }
    }

    /// `true` for [`JobError::Cancelled`].
    pub fn is_cancelled(&self) -> bool {
        matches!(self, JobError::Cancelled(_))
    }
}

impl<R> fmt::Debug for JobError<R> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            JobError::Panicked(_) => {
                write!(
                    f,
                    "Panicked({:?})",
                    self.panic_message().unwrap_or("<non-string payload>")
                )
            }
            JobError::Cancelled(_) => f.write_str("Cancelled(..)"),
        }
    }
}

impl<R> fmt::Display for JobError<R> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            JobError::Panicked(_) => write!(
                f,
                "job panicked: {}",
                self.panic_message().unwrap_or("<non-string payload>")
            ),
            JobError::Cancelled(_) => f.write_str("job cancelled before it ran"),
        }
    }
}

impl<R> std::error::Error for JobError<R> {}
