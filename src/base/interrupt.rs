//! SIGINT/SIGTERM: writes stop between batches, the run fails without committing and releases
//! its lock. A second signal ends the process at once.

use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, LazyLock};

/// Set by the signal handlers.
static INTERRUPTED: LazyLock<Arc<AtomicBool>> = LazyLock::new(|| Arc::new(AtomicBool::new(false)));

/// True once SIGINT or SIGTERM arrived.
pub fn interrupted() -> bool {
    INTERRUPTED.load(Ordering::Relaxed)
}

/// Installs the handlers; the binary calls this once at start.
pub fn install_signal_handlers() {
    for sig in [signal_hook::consts::SIGINT, signal_hook::consts::SIGTERM] {
        // Order matters: the shutdown check runs before the flag is set by this signal.
        let _ = signal_hook::flag::register_conditional_shutdown(sig, 130, INTERRUPTED.clone());
        let _ = signal_hook::flag::register(sig, INTERRUPTED.clone());
    }
}
