//! The runtime running on this thread, for the free functions (`spawn`,
//! `offload`, `sleep`, the sockets' constructors) and for same-thread wakes.

use super::core::Core;
use super::remote::Remote;
use super::task::Header;
use std::cell::RefCell;
use std::rc::Rc;
use std::sync::Arc;

thread_local! {
    static CURRENT: RefCell<Option<Rc<Core>>> = const { RefCell::new(None) };
}

/// The runtime this thread is inside of, if any.
#[inline]
pub(crate) fn current() -> Option<Rc<Core>> {
    CURRENT.with(|c| c.borrow().clone())
}

/// Makes `core` current until the guard drops (restoring what was there).
pub(crate) fn enter(core: Rc<Core>) -> Guard {
    let prev = CURRENT.with(|c| c.replace(Some(core)));
    Guard { prev }
}

/// Restores the previous runtime on drop.
pub(crate) struct Guard {
    prev: Option<Rc<Core>>,
}

impl Drop for Guard {
    fn drop(&mut self) {
        let prev = self.prev.take();
        // The thread-local may already be gone at thread exit.
        let _ = CURRENT.try_with(|c| c.replace(prev));
    }
}

/// Puts `task` on the local ready queue if this thread is inside the
/// runtime it belongs to; hands it back otherwise.
pub(crate) fn push_local(task: Arc<Header>) -> Result<(), Arc<Header>> {
    let mut task = Some(task);
    let _ = CURRENT.try_with(|c| {
        if let (Some(core), Some(t)) = (c.borrow().as_deref(), task.as_ref()) {
            if Arc::ptr_eq(&core.remote, &t.remote) {
                core.ready.borrow_mut().extend(task.take());
            }
        }
    });
    match task {
        None => Ok(()),
        Some(t) => Err(t),
    }
}

/// `true` if the runtime running on this thread is the one whose wakes go
/// through `remote` (a task's runtime, known from its header).
pub(crate) fn is_current_remote(remote: &Arc<Remote>) -> bool {
    CURRENT
        .try_with(|c| {
            c.borrow()
                .as_deref()
                .is_some_and(|cur| Arc::ptr_eq(&cur.remote, remote))
        })
        .unwrap_or(false)
}

/// `true` if `core` is the runtime running on this thread.
pub(crate) fn is_current(core: &Core) -> bool {
    CURRENT
        .try_with(|c| {
            c.borrow()
                .as_deref()
                .is_some_and(|cur| std::ptr::eq(cur, core))
        })
        .unwrap_or(false)
}
