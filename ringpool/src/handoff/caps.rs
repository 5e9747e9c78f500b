//! What this kernel can do, probed once.
//!
//! Opcodes come from `IORING_REGISTER_PROBE`. What a probe cannot see is
//! tested directly (the ringless MSG_RING register opcode is exercised for
//! real against a scratch ring; DEFER_TASKRUN by building a ring with it) or,
//! failing that, read off the kernel release (multishot poll, 5.13).

use crate::sys;
use io_uring::{opcode, IoUring, Probe};
use std::sync::OnceLock;

/// The kernel's io_uring capabilities that matter to the handoff backends.
#[derive(Clone, Debug)]
#[non_exhaustive]
pub struct Capabilities {
    /// `uname -r`.
    pub release: String,
    /// `(major, minor)` parsed from the release.
    pub version: Option<(u32, u32)>,
    /// io_uring could be set up at all (`io_uring_setup` worked).
    pub io_uring: bool,
    /// Why io_uring is unusable, when it is.
    pub io_uring_error: Option<String>,
    /// `IORING_FEAT_NODROP` (5.5): a full CQ overflows instead of dropping.
    pub nodrop: bool,
    /// `IORING_FEAT_CQE_SKIP` (5.17): `IOSQE_CQE_SKIP_SUCCESS`.
    pub cqe_skip: bool,
    /// `IORING_FEAT_EXT_ARG` (5.11): timeouts on `io_uring_enter`.
    pub ext_arg: bool,
    /// `IORING_OP_MSG_RING` (5.18).
    pub msg_ring: bool,
    /// `IORING_REGISTER_SEND_MSG_RING`, ringless MSG_RING (6.13), tested by
    /// sending a message to a scratch ring.
    pub sync_msg_ring: bool,
    /// `IORING_OP_FUTEX_WAIT` and `IORING_OP_FUTEX_WAKE` (6.7).
    pub futex: bool,
    /// `IORING_OP_POLL_ADD` (5.1); multishot needs 5.13 (`poll_multishot`).
    pub poll: bool,
    /// Multishot `IORING_OP_POLL_ADD` (5.13, from the release: a probe cannot see it).
    pub poll_multishot: bool,
    /// `IORING_OP_READ` and `IORING_OP_WRITE` (5.6).
    pub read_write: bool,
    /// `IORING_SETUP_SINGLE_ISSUER | IORING_SETUP_DEFER_TASKRUN` (6.1), by building one.
    pub defer_taskrun: bool,
    /// `eventfd(2)` works.
    pub eventfd: bool,
}

impl Capabilities {
    /// Probes the running kernel (cached: the first call does the work).
    pub fn get() -> &'static Capabilities {
        static CAPS: OnceLock<Capabilities> = OnceLock::new();
        CAPS.get_or_init(Capabilities::probe_now)
    }

    /// Why a mechanism cannot run here: it needs `what`, which Linux `since`
    /// added and this kernel lacks.
    pub(crate) fn missing(&self, what: &str, since: &str) -> String {
        format!(
            "needs {what} (Linux {since}); kernel {} lacks it",
            self.release
        )
    }

    /// A kernel with every feature (for tests of the choice).
    #[cfg(test)]
    pub(crate) fn everything() -> Capabilities {
        Capabilities {
            release: "6.18.0-test".into(),
            version: Some((6, 18)),
            io_uring: true,
            io_uring_error: None,
            nodrop: true,
            cqe_skip: true,
            ext_arg: true,
            msg_ring: true,
            sync_msg_ring: true,
            futex: true,
            poll: true,
            poll_multishot: true,
            read_write: true,
            defer_taskrun: true,
            eventfd: true,
        }
    }

    fn probe_now() -> Capabilities {
        let (release, version) = sys::thread::kernel_release();
        let at_least = |maj: u32, min: u32| version.is_some_and(|v| v >= (maj, min));
        let mut caps = Capabilities {
            release,
            version,
            io_uring: false,
            io_uring_error: None,
            nodrop: false,
            cqe_skip: false,
            ext_arg: false,
            msg_ring: false,
            sync_msg_ring: false,
            futex: false,
            poll: false,
            poll_multishot: false,
            read_write: false,
            defer_taskrun: false,
            eventfd: sys::eventfd::new().is_ok(),
        };
        let mut ring: IoUring = match IoUring::new(8) {
            Ok(r) => r,
            Err(e) => {
                caps.io_uring_error = Some(e.to_string());
                return caps;
            }
        };
        caps.io_uring = true;
        let p = ring.params();
        caps.nodrop = p.is_feature_nodrop();
        caps.cqe_skip = p.is_feature_skip_cqe_on_success();
        caps.ext_arg = p.is_feature_ext_arg();
        let mut probe = Probe::new();
        if ring.submitter().register_probe(&mut probe).is_ok() {
            caps.msg_ring = probe.is_supported(opcode::MsgRingData::CODE);
            caps.futex = probe.is_supported(opcode::FutexWait::CODE)
                && probe.is_supported(opcode::FutexWake::CODE);
            caps.poll = probe.is_supported(opcode::PollAdd::CODE);
            caps.read_write =
                probe.is_supported(opcode::Read::CODE) && probe.is_supported(opcode::Write::CODE);
        }
        // A probe cannot see the multishot flag of POLL_ADD; 5.13 added it.
        caps.poll_multishot = caps.poll && at_least(5, 13);
        caps.defer_taskrun = IoUring::<io_uring::squeue::Entry>::builder()
            .setup_single_issuer()
            .setup_defer_taskrun()
            .build(2)
            .is_ok();
        caps.sync_msg_ring = probe_sync_msg(&mut ring);
        caps
    }
}

/// Sends one ringless message to `ring` and checks that it arrives. A probe
/// cannot see register opcodes, and the release alone would trust backports
/// or miss them; this asks the kernel itself.
fn probe_sync_msg(ring: &mut IoUring) -> bool {
    use std::os::fd::AsRawFd;
    const PROBE_UD: u64 = 0x5250_0000_0000_0001;
    if sys::msg_ring::send(ring.as_raw_fd(), PROBE_UD, 7).is_err() {
        return false;
    }
    if ring.submit_and_wait(1).is_err() {
        return false;
    }
    let hit = ring
        .completion()
        .any(|c| c.user_data() == PROBE_UD && c.result() == 7);
    hit
}
