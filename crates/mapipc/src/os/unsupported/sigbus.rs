//! SIGBUS protection for file mappings (stub): there are no mappings to protect, so
//! [`register`] fails with an "unsupported" error and its [`Guard`] can never exist (the
//! type is uninhabited). See the [`os` module docs](crate::os).

use std::convert::Infallible;

use super::unsupported;

/// A registration of one mapping's address range. Uninhabited here: [`register`] always
/// fails, so none of these methods can run.
#[derive(Debug)]
pub struct Guard {
    never: Infallible,
}

impl Guard {
    /// Whether a SIGBUS hit this mapping (unreachable: no `Guard` exists here).
    #[inline(always)]
    pub fn faulted(&self) -> bool {
        match self.never {}
    }

    /// How many faults were absorbed (unreachable: no `Guard` exists here).
    pub fn fault_count(&self) -> u32 {
        match self.never {}
    }

    /// The address of the first fault (unreachable: no `Guard` exists here).
    pub fn first_fault(&self) -> Option<usize> {
        match self.never {}
    }

    /// Moves the registration to a new range (unreachable: no `Guard` exists here).
    pub fn update(&self, _start: usize, _len: usize) {
        match self.never {}
    }

    /// Marks the mapping as truncated (unreachable: no `Guard` exists here).
    pub fn poison(&self) {
        match self.never {}
    }
}

/// Registers a mapping's range with the SIGBUS handler on Linux; unsupported here.
pub fn register(_start: usize, _len: usize) -> std::io::Result<Guard> {
    Err(unsupported("SIGBUS protection (sigaction)"))
}

/// Number of SIGBUS faults outside our mappings that were passed on: always 0 here, since
/// no handler is installed.
pub fn foreign_faults() -> u32 {
    0
}

/// Why the handler passed a `SIGBUS` on, on Linux (see [`passed_on`]).
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
#[non_exhaustive]
pub enum PassedOn {
    /// Sent by a process, not a fault.
    Sent = 0,
    /// A fault at an address that no registered mapping covers.
    Unregistered = 1,
    /// A fault in a registered mapping whose page could not be replaced.
    NotReplaced = 2,
}

/// Number of SIGBUS signals passed on because of `why`: always 0 here, since no handler is
/// installed.
pub fn passed_on(_why: PassedOn) -> u32 {
    0
}
