//! SIGBUS protection for file-backed mappings.
//!
//! When another process truncates a file that we have mapped, touching a page past the new
//! end of file raises `SIGBUS`, whose default action kills the process. mapipc makes that a
//! recoverable error with the technique of systemd's `src/basic/sigbus.c` and Wayland's
//! `wl_shm`:
//!
//! 1. Every file mapping that could be truncated registers its address range in a global,
//!    lock-free [registry](register) and gets a [`Guard`] holding a fault counter.
//! 2. A process-wide `SIGBUS` handler (installed once, chaining to any previous handler)
//!    looks the faulting address up in the registry. If it belongs to a registered mapping,
//!    the handler maps a zero page over the faulting page with `MAP_FIXED`, bumps the
//!    mapping's fault counter (keeping the address of its first fault, for
//!    [`Guard::first_fault`]) and returns: the faulting instruction is restarted and now
//!    succeeds (reading zeros, or writing into the throw-away page).
//! 3. Every safe access through the mapping checks the counter after its copy (with a
//!    compiler fence, the signal-handler ordering primitive) and turns a fault into an error.
//!    The mapping is poisoned from then on: its pages no longer reflect the file.
//!
//! The kernel also raises SIGBUS for a page inside the file that it cannot supply (an I/O
//! error, no space to allocate it); the handler treats it the same way, and the owner of the
//! mapping tells the two apart afterwards (see the `map` module docs).
//!
//! A fault at an address no registered mapping covers is not ours: the handler restores the
//! previous disposition (or calls the previous handler) so the process behaves exactly as if
//! mapipc had never installed anything. A SIGBUS *sent* by a process (`kill -BUS`, `raise`,
//! `sigqueue`; `si_code <= 0`) is never taken for a fault, whatever its `si_addr` says, and is
//! passed on the same way; when that leaves the default disposition in place (ours reset, or
//! a previous handler that resets itself and returns, like Rust's stack-overflow handler), it
//! is raised again so that it terminates the process, as the default action does, instead of
//! being swallowed and leaving the process unprotected from then on. A previously ignored
//! one stays ignored. A previous handler is called as the kernel would call it: with its
//! `sa_mask` blocked; if it was installed with `SA_NODEFER`, with `SIGBUS` unblocked (unless
//! its `sa_mask` names it), so a `SIGBUS` raised while it runs enters the handlers again; and
//! if it was installed with `SA_RESETHAND`, only once (later signals not ours then get the
//! default action). The mask is restored when it returns.
//!
//! The handler is async-signal-safe: it only does atomic loads and stores on static memory,
//! raw syscalls through rustix's `linux_raw` backend, which never touches `errno`, and on the
//! pass-on path `sigaction`, `pthread_sigmask`, the `sigset_t` helpers (`sigemptyset`,
//! `sigaddset`, `sigismember`) and `raise`, all async-signal-safe.
//!
//! Sealed memfds (`F_SEAL_SHRINK`) and anonymous mappings cannot be truncated and are not
//! registered.

use std::ffi::c_void;
use std::ptr;
use std::sync::atomic::{compiler_fence, AtomicBool, AtomicPtr, AtomicU32, AtomicUsize, Ordering};
use std::sync::OnceLock;

const SLOTS_PER_CHUNK: usize = 64;

/// One registered mapping.
///
/// `seq` is a sequence lock: odd while the slot is being (re)written, so the handler never
/// pairs the start of one registration with the end of another.
pub(crate) struct Slot {
    claimed: AtomicBool,
    seq: AtomicU32,
    start: AtomicUsize,
    end: AtomicUsize,
    faults: AtomicU32,
    /// The address of the first fault since registration, 0 if none (a registered range
    /// never starts at 0). Written before `faults` is bumped, read after it.
    first_fault: AtomicUsize,
}

impl Slot {
    const fn new() -> Self {
        Slot {
            claimed: AtomicBool::new(false),
            seq: AtomicU32::new(0),
            start: AtomicUsize::new(0),
            end: AtomicUsize::new(0),
            faults: AtomicU32::new(0),
            first_fault: AtomicUsize::new(0),
        }
    }

    fn write_range(&self, start: usize, end: usize) {
        // Odd: readers skip the slot while we write it.
        self.seq.fetch_add(1, Ordering::AcqRel);
        self.start.store(start, Ordering::Relaxed);
        self.end.store(end, Ordering::Relaxed);
        // Even again; Release pairs with the handler's Acquire load of `seq`.
        self.seq.fetch_add(1, Ordering::Release);
    }

    /// Whether `addr` is inside this slot's range, read consistently.
    fn covers(&self, addr: usize) -> bool {
        // Acquire pairs with the Release in `write_range`.
        let s1 = self.seq.load(Ordering::Acquire);
        if s1 & 1 == 1 {
            return false;
        }
        let start = self.start.load(Ordering::Relaxed);
        let end = self.end.load(Ordering::Relaxed);
        std::sync::atomic::fence(Ordering::Acquire);
        let s2 = self.seq.load(Ordering::Relaxed);
        s1 == s2 && start != 0 && addr >= start && addr < end
    }
}

struct Chunk {
    slots: [Slot; SLOTS_PER_CHUNK],
    next: AtomicPtr<Chunk>,
}

impl Chunk {
    const fn new() -> Self {
        Chunk {
            slots: [const { Slot::new() }; SLOTS_PER_CHUNK],
            next: AtomicPtr::new(ptr::null_mut()),
        }
    }

    fn next(&self) -> Option<&'static Chunk> {
        let p = self.next.load(Ordering::Acquire);
        // SAFETY: `next` is either null or a pointer from `Box::leak` of a fully initialised
        // chunk, published with Release in `grow_chain`; chunks are never freed.
        unsafe { p.as_ref() }
    }
}

static HEAD: Chunk = Chunk::new();
static INSTALLED: OnceLock<Result<(), i32>> = OnceLock::new();
static PAGE: AtomicUsize = AtomicUsize::new(4096);
/// Faults seen at addresses outside every registered mapping that we passed on.
static FOREIGN: AtomicU32 = AtomicU32::new(0);
/// Storage for the previous `sigaction`, written once before our handler is installed.
static PREVIOUS: OnceLock<SigactionCell> = OnceLock::new();
/// The previous handler was installed with `SA_RESETHAND` and has been called once: it is
/// `SIG_DFL` from then on (see `chain`).
static PREVIOUS_SPENT: AtomicBool = AtomicBool::new(false);

struct SigactionCell(libc::sigaction);
// SAFETY: `libc::sigaction` is plain data (a handler address, a mask, flags); it is written
// once before publication through `OnceLock` and only read afterwards.
unsafe impl Sync for SigactionCell {}
// SAFETY: as above.
unsafe impl Send for SigactionCell {}

/// A registration of one mapping's address range; unregisters on drop.
///
/// # Example
/// See [`register`].
pub struct Guard {
    slot: &'static Slot,
}

impl Guard {
    /// Whether a SIGBUS hit this mapping since it was registered. Call after an access, the
    /// fence orders the check after the access as seen by a signal handler on this thread.
    #[inline(always)]
    pub fn faulted(&self) -> bool {
        compiler_fence(Ordering::SeqCst);
        self.slot.faults.load(Ordering::Acquire) != 0
    }

    /// How many faults were absorbed.
    pub fn fault_count(&self) -> u32 {
        self.slot.faults.load(Ordering::Acquire)
    }

    /// The address of the first fault absorbed since registration (`si_addr`: the byte the
    /// faulting instruction touched), or `None` when there was none ([`poison`](Self::poison)
    /// records no address). For telling why the kernel refused the page, after the fact.
    pub fn first_fault(&self) -> Option<usize> {
        // Acquire pairs with the handler's Release bump of `faults`, which follows its store
        // of the address.
        if self.slot.faults.load(Ordering::Acquire) == 0 {
            return None;
        }
        match self.slot.first_fault.load(Ordering::Relaxed) {
            0 => None,
            addr => Some(addr),
        }
    }

    /// Moves the registration to a new range (after `mremap`). `update(0, 0)` covers
    /// nothing: while a mapping moves, its old range may be handed to a new mapping by
    /// another thread, and a fault there must not be charged to this one.
    pub fn update(&self, start: usize, len: usize) {
        self.slot.write_range(start, start.saturating_add(len));
    }

    /// Marks the mapping as truncated without a fault: its owner found the file shorter than
    /// the mapping (by `fstat`), so bytes past the new end are lost even if no page of them
    /// was touched (a file truncated and extended again reads zeros there, without a fault).
    pub fn poison(&self) {
        self.slot.faults.fetch_add(1, Ordering::Release);
    }
}

impl Drop for Guard {
    fn drop(&mut self) {
        self.slot.write_range(0, 0);
        self.slot.faults.store(0, Ordering::Relaxed);
        self.slot.first_fault.store(0, Ordering::Relaxed);
        self.slot.claimed.store(false, Ordering::Release);
    }
}

impl std::fmt::Debug for Guard {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Guard")
            .field("faults", &self.fault_count())
            .finish()
    }
}

/// Registers `start..start+len` and installs the handler if needed.
///
/// Returns an error when the handler cannot be installed (`sigaction` failed).
///
/// [`Mmap`](crate::map::Mmap) registers every file mapping that could be truncated; this is
/// for mappings made directly with [`os::mem`](super::mem).
///
/// # Example
/// ```
/// use mapipc::os::sigbus;
/// let map = mapipc::map::Mmap::anonymous(8192)?;
/// let start = map.as_ptr() as usize;
/// let guard = sigbus::register(start, 4096)?;
/// map.write_at(0, b"touched")?; // a normal access: no fault
/// assert!(!guard.faulted());
/// assert_eq!(guard.fault_count(), 0);
/// assert_eq!(guard.first_fault(), None);
/// guard.update(start, 8192); // the mapping grew (after an mremap)
/// guard.poison(); // its owner found the file shorter than the mapping
/// assert!(guard.faulted());
/// assert_eq!(guard.first_fault(), None); // poisoned, but no page faulted
/// drop(guard); // unregisters
/// assert_eq!(sigbus::foreign_faults(), 0);
/// # Ok::<(), Box<dyn std::error::Error>>(())
/// ```
pub fn register(start: usize, len: usize) -> std::io::Result<Guard> {
    install()?;
    let slot = claim_slot();
    slot.faults.store(0, Ordering::Relaxed);
    slot.first_fault.store(0, Ordering::Relaxed);
    slot.write_range(start, start.saturating_add(len));
    Ok(Guard { slot })
}

fn claim_slot() -> &'static Slot {
    let mut chunk: &'static Chunk = &HEAD;
    loop {
        for slot in &chunk.slots {
            if !slot.claimed.load(Ordering::Relaxed)
                && slot
                    .claimed
                    .compare_exchange(false, true, Ordering::Acquire, Ordering::Relaxed)
                    .is_ok()
            {
                return slot;
            }
        }
        chunk = match chunk.next() {
            Some(n) => n,
            None => grow_chain(chunk),
        };
    }
}

fn grow_chain(last: &'static Chunk) -> &'static Chunk {
    let fresh: &'static mut Chunk = Box::leak(Box::new(Chunk::new()));
    let fresh_ptr: *mut Chunk = fresh;
    // Release publishes the initialised chunk to `Chunk::next`'s Acquire.
    match last.next.compare_exchange(
        ptr::null_mut(),
        fresh_ptr,
        Ordering::AcqRel,
        Ordering::Acquire,
    ) {
        Ok(_) => {
            // SAFETY: just leaked and published; never freed.
            unsafe { &*fresh_ptr }
        }
        Err(existing) => {
            // Someone else appended first; ours stays leaked (a few KiB, once) but unused.
            // SAFETY: `existing` was published with Release by the winner; never freed.
            unsafe { &*existing }
        }
    }
}

fn find(addr: usize) -> Option<&'static Slot> {
    let mut chunk: &'static Chunk = &HEAD;
    loop {
        for slot in &chunk.slots {
            if slot.covers(addr) {
                return Some(slot);
            }
        }
        chunk = chunk.next()?;
    }
}

fn install() -> std::io::Result<()> {
    let r = INSTALLED.get_or_init(|| {
        PAGE.store(super::mem::page_size(), Ordering::Relaxed);
        // SAFETY: an all-zero `sigaction` is a valid value (SIG_DFL, empty mask, no flags);
        // it is only used as an out-parameter and the initial value of ours.
        let mut old: libc::sigaction = unsafe { std::mem::zeroed() };
        // SAFETY: as above.
        let mut new: libc::sigaction = unsafe { std::mem::zeroed() };
        new.sa_sigaction = handler as *const () as usize;
        new.sa_flags = libc::SA_SIGINFO | libc::SA_ONSTACK | libc::SA_RESTART;
        // SAFETY: `new.sa_mask` is a valid sigset_t to initialise.
        unsafe { libc::sigemptyset(&mut new.sa_mask) };
        // Read the current disposition first so PREVIOUS is set before ours can run.
        // SAFETY: valid pointers to initialised `sigaction` values; NULL `act` only queries.
        if unsafe { libc::sigaction(libc::SIGBUS, ptr::null(), &mut old) } != 0 {
            return Err(std::io::Error::last_os_error().raw_os_error().unwrap_or(0));
        }
        let _ = PREVIOUS.set(SigactionCell(old));
        // SAFETY: `handler` is an `extern "C"` function with the SA_SIGINFO signature.
        if unsafe { libc::sigaction(libc::SIGBUS, &new, ptr::null_mut()) } != 0 {
            return Err(std::io::Error::last_os_error().raw_os_error().unwrap_or(0));
        }
        Ok(())
    });
    r.map_err(std::io::Error::from_raw_os_error)
}

/// Number of SIGBUS faults at addresses outside our mappings that were passed on.
///
/// # Example
/// See [`register`].
pub fn foreign_faults() -> u32 {
    FOREIGN.load(Ordering::Relaxed)
}

/// Whether a signal was raised by the kernel for a fault (`si_code > 0`: `BUS_ADRERR`,
/// `BUS_OBJERR`, ...) rather than sent by a process (`kill`, `raise`, `sigqueue`, `tgkill`:
/// `si_code <= 0`). Only a fault has a meaningful `si_addr`; in a sent signal that field
/// overlaps the sender's pid and uid, or whatever `rt_sigqueueinfo` put there.
fn is_fault(info: *const libc::siginfo_t) -> bool {
    // SAFETY: the kernel passes a valid siginfo for an SA_SIGINFO handler.
    unsafe { (*info).si_code > 0 }
}

extern "C" fn handler(sig: libc::c_int, info: *mut libc::siginfo_t, ctx: *mut c_void) {
    let fault = is_fault(info);
    // SAFETY: the kernel passes a valid siginfo for an SA_SIGINFO handler.
    let addr = unsafe { (*info).si_addr() } as usize;
    if let Some(slot) = fault.then(|| find(addr)).flatten() {
        let page = PAGE.load(Ordering::Relaxed);
        let base = addr & !(page - 1);
        // SAFETY: the page lies inside a mapping registered by a live `Guard` (its owner is
        // mid-access on this thread, so the mapping cannot be unmapped concurrently); the
        // owner treats its contents as lost once `faults` is non-zero.
        if unsafe { super::mem::map_zero_pages_fixed(base as *mut c_void, page) }.is_ok() {
            // Only the first address is kept (later faults of the same access follow it).
            let _ =
                slot.first_fault
                    .compare_exchange(0, addr, Ordering::Relaxed, Ordering::Relaxed);
            slot.faults.fetch_add(1, Ordering::Release);
            return;
        }
    }
    FOREIGN.fetch_add(1, Ordering::Relaxed);
    chain(sig, info, ctx, fault);
}

fn chain(sig: libc::c_int, info: *mut libc::siginfo_t, ctx: *mut c_void, fault: bool) {
    let previous = PREVIOUS.get().map(|p| &p.0);
    let (mut h, flags) = previous.map_or((libc::SIG_DFL, 0), |p| (p.sa_sigaction, p.sa_flags));
    // A previous handler installed with SA_RESETHAND was for one delivery: the kernel would
    // have reset the disposition to the default when calling it. Ours stays installed (it
    // protects our mappings), so we keep that state ourselves: the previous handler is
    // called once, and from then on a signal not ours gets the default action.
    if flags & libc::SA_RESETHAND as libc::c_int != 0
        && h != libc::SIG_DFL
        && h != libc::SIG_IGN
        && PREVIOUS_SPENT.swap(true, Ordering::Relaxed)
    {
        h = libc::SIG_DFL;
    }
    if h == libc::SIG_IGN && !fault {
        // A sent SIGBUS that the process ignored before us: ignore it, as it would have been.
        return;
    }
    if h == libc::SIG_DFL || h == libc::SIG_IGN {
        // Restore the default action and return: the faulting instruction runs again, faults
        // again, and the kernel applies the default (terminate with SIGBUS; it also forces
        // the default on an ignored fault signal), as without us.
        reset_default(sig);
    } else {
        // The kernel would run the previous handler with its own `sa_mask` blocked too
        // (besides `sig`, blocked already while we run): block it for the call, as
        // `sigaction(2)` says, then restore ours. A handler installed with SA_NODEFER
        // would run with `sig` itself not blocked (unless its `sa_mask` names it): unblock
        // it for the call too. (A handler that leaves by `siglongjmp` restores the mask it
        // saved; a normal return from ours restores the interrupted code's mask in
        // `sigreturn` either way.)
        let mask = previous.map(|p| p.sa_mask);
        let nodefer = flags & libc::SA_NODEFER as libc::c_int != 0;
        // SAFETY: all-zero is a valid out-parameter for the old mask.
        let mut saved: libc::sigset_t = unsafe { std::mem::zeroed() };
        let blocked = mask.is_some_and(|m| {
            // SAFETY: valid pointers to initialised sigsets; `pthread_sigmask` only changes
            // this thread's mask (Linux's `rt_sigprocmask`, async-signal-safe), and
            // `sigismember`, `sigemptyset` and `sigaddset` only read or write the set given.
            unsafe {
                if libc::pthread_sigmask(libc::SIG_BLOCK, &m, &mut saved) != 0 {
                    return false;
                }
                if nodefer && libc::sigismember(&m, sig) != 1 {
                    let mut only: libc::sigset_t = std::mem::zeroed();
                    libc::sigemptyset(&mut only);
                    libc::sigaddset(&mut only, sig);
                    libc::pthread_sigmask(libc::SIG_UNBLOCK, &only, ptr::null_mut());
                }
                true
            }
        });
        if flags & libc::SA_SIGINFO != 0 {
            // SAFETY: the previous handler was installed with SA_SIGINFO, so it has this
            // signature.
            let f: extern "C" fn(libc::c_int, *mut libc::siginfo_t, *mut c_void) =
                unsafe { std::mem::transmute(h) };
            f(sig, info, ctx);
        } else {
            // SAFETY: a handler installed without SA_SIGINFO has the one-argument signature.
            let f: extern "C" fn(libc::c_int) = unsafe { std::mem::transmute(h) };
            f(sig);
        }
        if blocked {
            // SAFETY: `saved` was filled in by the call above.
            unsafe { libc::pthread_sigmask(libc::SIG_SETMASK, &saved, ptr::null_mut()) };
        }
    }
    // A sent SIGBUS does not come back by itself the way a fault does. If the disposition is
    // now the default (ours reset above, or a previous handler that "unregisters itself and
    // returns so the fault recurs", as Rust's own stack-overflow handler does), the signal
    // would be swallowed, and the process left without our handler: send it again. It stays
    // pending while this handler runs (the signal is blocked here) and the default action,
    // termination, happens on return, as it would have without mapipc.
    if !fault && is_default(sig) {
        // SAFETY: `raise` is async-signal-safe (POSIX); it only sends `sig` to this thread.
        unsafe { libc::raise(sig) };
    }
}

/// Whether `sig`'s disposition is `SIG_DFL` now.
fn is_default(sig: libc::c_int) -> bool {
    // SAFETY: all-zero is a valid out-parameter; a NULL `act` only queries; sigaction is
    // async-signal-safe.
    let mut cur: libc::sigaction = unsafe { std::mem::zeroed() };
    // SAFETY: as above.
    unsafe { libc::sigaction(sig, ptr::null(), &mut cur) == 0 && cur.sa_sigaction == libc::SIG_DFL }
}

fn reset_default(sig: libc::c_int) {
    // SAFETY: all-zero is SIG_DFL with an empty mask.
    let mut dfl: libc::sigaction = unsafe { std::mem::zeroed() };
    dfl.sa_sigaction = libc::SIG_DFL;
    // SAFETY: valid pointer to an initialised sigaction; sigaction is async-signal-safe.
    unsafe { libc::sigaction(sig, &dfl, ptr::null_mut()) };
}
