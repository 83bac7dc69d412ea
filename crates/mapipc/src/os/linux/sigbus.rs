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
//! When the handler passes a signal on and the default action follows (the process is about
//! to die of it), it first writes one line to stderr saying why, so that the crash explains
//! itself: `mapipc: SIGBUS at 0x7f3a5c010000 not in a mapipc mapping; passing it on` (or that
//! the signal was sent by a process, or that the zero page could not be mapped, with the
//! `errno`). [`passed_on`] counts the signals passed on, by [cause](PassedOn).
//!
//! The handler is installed per process, and a process made by `fork` inherits it. A `fork`
//! by one thread while another installs it can leave the child with the registry saying
//! "installed" and the disposition from before: the kernel copies the dispositions before
//! the memory, and the install can fall between the two copies (or leave a lock held by a
//! thread the child does not have). So the first registration in each process (by pid)
//! looks at the disposition itself, under a lock a child can take over from a thread it did
//! not inherit, and installs the handler when the fork caught it half done.
//!
//! The handler is async-signal-safe: it only does atomic loads and stores on static memory,
//! raw syscalls through rustix's `linux_raw` backend, which never touches `errno`, and on the
//! pass-on path `sigaction`, `pthread_sigmask`, the `sigset_t` helpers (`sigemptyset`,
//! `sigaddset`, `sigismember`), `raise` and `write(2)` of a line built on the stack, all
//! async-signal-safe.
//!
//! Sealed memfds (`F_SEAL_SHRINK`) and anonymous mappings cannot be truncated and are not
//! registered.

use std::cell::UnsafeCell;
use std::ffi::c_void;
use std::mem::MaybeUninit;
use std::os::fd::BorrowedFd;
use std::ptr;
use std::sync::atomic::{compiler_fence, AtomicBool, AtomicPtr, AtomicU32, AtomicUsize, Ordering};

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
static PAGE: AtomicUsize = AtomicUsize::new(4096);
/// The process (pid) whose SIGBUS disposition [`install`] has settled: ours installed, or a
/// later handler left in its place. 0 before the first registration. A child made by `fork`
/// inherits its parent's pid here, and so settles its own at its first registration.
static SETTLED_IN: AtomicU32 = AtomicU32::new(0);
/// Held while a thread installs: 0 when free, else the pid of the holder's process. A holder
/// of another process is a thread that a `fork` caught installing and did not copy: it will
/// never release the lock in this process, which takes it over.
static INSTALLING: AtomicU32 = AtomicU32::new(0);
/// The disposition before ours, saved when ours is first installed.
static PREVIOUS: Previous = Previous {
    set: AtomicBool::new(false),
    action: UnsafeCell::new(MaybeUninit::uninit()),
};
/// The previous handler was installed with `SA_RESETHAND` and has been called once: it is
/// `SIG_DFL` from then on (see `chain`).
static PREVIOUS_SPENT: AtomicBool = AtomicBool::new(false);
/// Signals passed on, by [`PassedOn`] (its discriminant is the index).
static PASSED_ON: [AtomicU32; 3] = [const { AtomicU32::new(0) }; 3];

/// The previous `sigaction`: written once, under [`INSTALLING`], before `set` and before ours
/// is installed; read by the handler only after `set`.
struct Previous {
    set: AtomicBool,
    action: UnsafeCell<MaybeUninit<libc::sigaction>>,
}

// SAFETY: `action` is plain data (a handler address, a mask, flags) written once, by the
// holder of `INSTALLING`, before `set` publishes it with Release; it is only read after an
// Acquire load of `set` returned true, and never written again then.
unsafe impl Sync for Previous {}

impl Previous {
    /// The disposition saved before ours, if ours was ever installed (in this process or in
    /// the parent it was forked from).
    fn get(&self) -> Option<&libc::sigaction> {
        if !self.set.load(Ordering::Acquire) {
            return None;
        }
        // SAFETY: `set` is true, so `action` was initialised and is never written again
        // (see the `Sync` impl).
        Some(unsafe { (*self.action.get()).assume_init_ref() })
    }

    /// Saves `action`, once. Only the holder of [`INSTALLING`] calls this, while our handler
    /// is not installed, so no handler reads it meanwhile.
    fn set_once(&self, action: libc::sigaction) {
        if self.set.load(Ordering::Acquire) {
            return;
        }
        // SAFETY: `set` is false, so nobody reads `action` (readers check `set` first) and the
        // only writer is this thread, which holds `INSTALLING`.
        unsafe { (*self.action.get()).write(action) };
        self.set.store(true, Ordering::Release);
    }
}

/// Why the handler passed a `SIGBUS` on (to the handler installed before it, or to the
/// default action) instead of absorbing it. See [`passed_on`].
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
#[non_exhaustive]
pub enum PassedOn {
    /// Sent by a process (`kill`, `raise`, `sigqueue`; `si_code <= 0`): not a fault.
    Sent = 0,
    /// A fault at an address that no registered mapping covers.
    Unregistered = 1,
    /// A fault in a registered mapping whose page could not be replaced by a zero page
    /// (`mmap` failed).
    NotReplaced = 2,
}

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

/// Makes sure our handler is installed in this process: once per process (pid), then a load.
///
/// The first time in a process it looks at the disposition itself rather than trusting
/// memory inherited through `fork`, which may say "installed" while the kernel copied the
/// disposition from before the install (see the module docs):
/// - ours: inherited from the parent, nothing to do;
/// - the one saved as [`PREVIOUS`] when ours was first installed, or any when ours never
///   was: ours is installed (a fork caught the install half done, or this is the first);
/// - another: a handler installed after ours replaced it (the README's first limit); it is
///   left alone, as in the process that installed it.
fn install() -> std::io::Result<()> {
    let me = super::process::pid();
    if SETTLED_IN.load(Ordering::Acquire) == me {
        return Ok(());
    }
    let _lock = InstallLock::take(&INSTALLING, me);
    if SETTLED_IN.load(Ordering::Acquire) == me {
        return Ok(()); // another thread of this process did it meanwhile
    }
    PAGE.store(super::mem::page_size(), Ordering::Relaxed);
    // SAFETY: an all-zero `sigaction` is a valid value (SIG_DFL, empty mask, no flags); it is
    // only used as an out-parameter.
    let mut current: libc::sigaction = unsafe { std::mem::zeroed() };
    // SAFETY: a valid pointer to an initialised `sigaction`; a NULL `act` only queries.
    if unsafe { libc::sigaction(libc::SIGBUS, ptr::null(), &mut current) } != 0 {
        return Err(std::io::Error::last_os_error());
    }
    let ours = handler as *const () as usize;
    let replaced = PREVIOUS
        .get()
        .is_some_and(|p| p.sa_sigaction != current.sa_sigaction);
    if current.sa_sigaction != ours && !replaced {
        // Save the current disposition first (the first install only) so that PREVIOUS is
        // set before ours can run.
        PREVIOUS.set_once(current);
        // SAFETY: as above.
        let mut new: libc::sigaction = unsafe { std::mem::zeroed() };
        new.sa_sigaction = ours;
        new.sa_flags = libc::SA_SIGINFO | libc::SA_ONSTACK | libc::SA_RESTART;
        // SAFETY: `new.sa_mask` is a valid sigset_t to initialise.
        unsafe { libc::sigemptyset(&mut new.sa_mask) };
        // SAFETY: `handler` is an `extern "C"` function with the SA_SIGINFO signature.
        if unsafe { libc::sigaction(libc::SIGBUS, &new, ptr::null_mut()) } != 0 {
            return Err(std::io::Error::last_os_error());
        }
    }
    SETTLED_IN.store(me, Ordering::Release);
    Ok(())
}

/// An install lock ([`INSTALLING`]), held until dropped.
struct InstallLock<'a>(&'a AtomicU32);

impl<'a> InstallLock<'a> {
    /// Takes `lock` for this process, `me`.
    fn take(lock: &'a AtomicU32, me: u32) -> InstallLock<'a> {
        loop {
            match lock.compare_exchange(0, me, Ordering::Acquire, Ordering::Relaxed) {
                Ok(_) => return InstallLock(lock),
                // Held by a thread of another process, which a fork did not copy into this
                // one (its pid stays with the parent): take it over. (Only a pid reused by
                // this process, inherited through forks without any install, could fool
                // this; it would wait for ever.)
                Err(holder) if holder != me => {
                    if lock
                        .compare_exchange(holder, me, Ordering::Acquire, Ordering::Relaxed)
                        .is_ok()
                    {
                        return InstallLock(lock);
                    }
                }
                // Another thread of this process is installing: a few syscalls.
                Err(_) => super::process::yield_now(),
            }
        }
    }
}

impl Drop for InstallLock<'_> {
    fn drop(&mut self) {
        self.0.store(0, Ordering::Release);
    }
}

/// Number of SIGBUS signals the handler passed on, of every [cause](PassedOn): faults at
/// addresses outside our mappings, signals sent by a process, and faults whose page could not
/// be replaced.
///
/// # Example
/// See [`register`].
pub fn foreign_faults() -> u32 {
    PASSED_ON
        .iter()
        .fold(0u32, |n, c| n.wrapping_add(c.load(Ordering::Relaxed)))
}

/// Number of SIGBUS signals the handler passed on because of `why`, in this process (a child
/// made by `fork` starts from its parent's counts). Most such signals end the process (the
/// default action), after a line on stderr saying why; these counts are for those a handler
/// installed before mapipc's dealt with.
///
/// # Example
/// ```
/// use mapipc::os::sigbus::{self, PassedOn};
/// let _map = mapipc::map::Mmap::anonymous(4096)?;
/// assert_eq!(sigbus::passed_on(PassedOn::Unregistered), 0);
/// assert_eq!(sigbus::passed_on(PassedOn::Sent), 0);
/// assert_eq!(sigbus::passed_on(PassedOn::NotReplaced), 0);
/// # Ok::<(), Box<dyn std::error::Error>>(())
/// ```
pub fn passed_on(why: PassedOn) -> u32 {
    PASSED_ON[why as usize].load(Ordering::Relaxed)
}

/// Whether a signal was raised by the kernel for a fault (`si_code > 0`: `BUS_ADRERR`,
/// `BUS_OBJERR`, ...) rather than sent by a process (`kill`, `raise`, `sigqueue`, `tgkill`:
/// `si_code <= 0`). Only a fault has a meaningful `si_addr`; in a sent signal that field
/// overlaps the sender's pid and uid, or whatever `rt_sigqueueinfo` put there.
fn is_fault(info: *const libc::siginfo_t) -> bool {
    si_code(info) > 0
}

/// The `si_code` of a signal (`SI_USER` is 0, `SI_QUEUE` -1, `SI_TKILL` -6; `BUS_ADRERR` 2).
fn si_code(info: *const libc::siginfo_t) -> i32 {
    // SAFETY: the kernel passes a valid siginfo for an SA_SIGINFO handler.
    unsafe { (*info).si_code }
}

extern "C" fn handler(sig: libc::c_int, info: *mut libc::siginfo_t, ctx: *mut c_void) {
    let fault = is_fault(info);
    // SAFETY: the kernel passes a valid siginfo for an SA_SIGINFO handler.
    let addr = unsafe { (*info).si_addr() } as usize;
    let why = if !fault {
        Why::Sent(si_code(info))
    } else if let Some(slot) = find(addr) {
        let page = PAGE.load(Ordering::Relaxed);
        let base = addr & !(page - 1);
        // SAFETY: the page lies inside a mapping registered by a live `Guard` (its owner is
        // mid-access on this thread, so the mapping cannot be unmapped concurrently); the
        // owner treats its contents as lost once `faults` is non-zero.
        match unsafe { super::mem::map_zero_pages_fixed(base as *mut c_void, page) } {
            Ok(()) => {
                // Only the first address is kept (later faults of the same access follow it).
                let _ = slot.first_fault.compare_exchange(
                    0,
                    addr,
                    Ordering::Relaxed,
                    Ordering::Relaxed,
                );
                slot.faults.fetch_add(1, Ordering::Release);
                return;
            }
            Err(e) => Why::NotReplaced(e.raw_os_error().unwrap_or(0)),
        }
    } else {
        Why::Unregistered
    };
    PASSED_ON[why.cause() as usize].fetch_add(1, Ordering::Relaxed);
    chain(sig, info, ctx, fault);
    // The default action follows (the fault recurs, or the sent signal was raised again): say
    // why first, for whoever reads the crash.
    if is_default(sig) {
        say(why.line(addr).as_bytes());
    }
}

/// Why a signal was passed on, with what the line on stderr says about it.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Why {
    /// Sent, with its `si_code`.
    Sent(i32),
    Unregistered,
    /// `mmap` of the zero page failed with this `errno`.
    NotReplaced(i32),
}

impl Why {
    fn cause(self) -> PassedOn {
        match self {
            Why::Sent(_) => PassedOn::Sent,
            Why::Unregistered => PassedOn::Unregistered,
            Why::NotReplaced(_) => PassedOn::NotReplaced,
        }
    }

    /// The line written to stderr before the default action (`addr` is `si_addr`).
    fn line(self, addr: usize) -> Line {
        let mut l = Line::new();
        l.text("mapipc: SIGBUS ");
        match self {
            Why::Sent(code) => {
                l.text("sent by a process (si_code ")
                    .int(code.into())
                    .text("), not a fault");
            }
            Why::Unregistered => {
                l.text("at ").hex(addr).text(" not in a mapipc mapping");
            }
            Why::NotReplaced(errno) => {
                l.text("at ")
                    .hex(addr)
                    .text(" in a mapipc mapping, but mapping a zero page there failed (errno ")
                    .int(errno.into())
                    .text(")");
            }
        }
        l.text("; passing it on").end();
        l
    }
}

/// A line of text built on the stack, for the handler (no allocation, no lock); what does not
/// fit is cut.
struct Line {
    buf: [u8; 160],
    len: usize,
}

impl Line {
    fn new() -> Line {
        Line {
            buf: [0; 160],
            len: 0,
        }
    }

    fn push(&mut self, b: u8) {
        if self.len < self.buf.len() {
            self.buf[self.len] = b;
            self.len += 1;
        }
    }

    fn text(&mut self, s: &str) -> &mut Line {
        for &b in s.as_bytes() {
            self.push(b);
        }
        self
    }

    /// Ends the line with a newline, over its last byte if it is full.
    fn end(&mut self) {
        self.len = self.len.min(self.buf.len() - 1);
        self.push(b'\n');
    }

    fn hex(&mut self, v: usize) -> &mut Line {
        self.text("0x");
        let digits = (usize::BITS - v.leading_zeros()).div_ceil(4).max(1);
        for i in (0..digits).rev() {
            self.push(b"0123456789abcdef"[(v >> (4 * i)) & 0xf]);
        }
        self
    }

    fn int(&mut self, v: i64) -> &mut Line {
        if v < 0 {
            self.push(b'-');
        }
        let mut digits = [0u8; 20];
        let (mut n, mut i) = (v.unsigned_abs(), 0);
        loop {
            digits[i] = b'0' + (n % 10) as u8;
            i += 1;
            n /= 10;
            if n == 0 {
                break;
            }
        }
        for &d in digits[..i].iter().rev() {
            self.push(d);
        }
        self
    }

    fn as_bytes(&self) -> &[u8] {
        &self.buf[..self.len]
    }
}

/// `write(2, bytes)`, once, ignoring errors (async-signal-safe: one raw syscall).
fn say(bytes: &[u8]) {
    // SAFETY: fd 2 is only borrowed for the call; if it is closed, `write` fails with EBADF,
    // which is ignored.
    let stderr = unsafe { BorrowedFd::borrow_raw(2) };
    let _ = rustix::io::write(stderr, bytes);
}

fn chain(sig: libc::c_int, info: *mut libc::siginfo_t, ctx: *mut c_void, fault: bool) {
    let previous = PREVIOUS.get();
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

#[cfg(test)]
mod tests {
    use super::*;

    /// A lock held by a thread of another process (a parent's, caught by `fork`) is taken
    /// over at once; one of this process is waited for.
    #[test]
    fn an_install_lock_held_in_another_process_is_taken_over() {
        let me = super::super::process::pid();
        let lock = AtomicU32::new(me.wrapping_add(1));
        let held = InstallLock::take(&lock, me);
        assert_eq!(lock.load(Ordering::Relaxed), me);
        std::thread::scope(|s| {
            let waiter = s.spawn(|| {
                let _second = InstallLock::take(&lock, me);
            });
            std::thread::sleep(std::time::Duration::from_millis(20));
            assert!(!waiter.is_finished(), "took a lock this process holds");
            drop(held);
            waiter.join().unwrap();
        });
        assert_eq!(lock.load(Ordering::Relaxed), 0);
    }

    /// The lines written before the default action, exactly; a line too long is cut and
    /// still ends with a newline.
    #[test]
    fn the_pass_on_lines_say_why() {
        let line = |why: Why, addr| String::from_utf8(why.line(addr).as_bytes().to_vec()).unwrap();
        assert_eq!(
            line(Why::Unregistered, 0x7f3a_5c01_0005),
            "mapipc: SIGBUS at 0x7f3a5c010005 not in a mapipc mapping; passing it on\n"
        );
        assert_eq!(
            line(Why::Sent(-6), 0),
            "mapipc: SIGBUS sent by a process (si_code -6), not a fault; passing it on\n"
        );
        assert_eq!(
            line(Why::NotReplaced(12), 0x1000),
            "mapipc: SIGBUS at 0x1000 in a mapipc mapping, but mapping a zero page there \
             failed (errno 12); passing it on\n"
        );
        let mut l = Line::new();
        l.hex(0)
            .text(" ")
            .hex(usize::MAX)
            .text(" ")
            .int(i64::MIN)
            .text(" ")
            .int(0);
        assert_eq!(
            l.as_bytes(),
            b"0x0 0xffffffffffffffff -9223372036854775808 0"
        );
        let mut long = Line::new();
        for _ in 0..100 {
            long.text("ab");
        }
        long.end();
        assert_eq!(long.as_bytes().len(), 160);
        assert!(long.as_bytes().ends_with(b"aba\n")); // 159 bytes of "abab...", then the newline
    }
}
