//! The firmware's test harness: named checks, `ensure!`-style assertions that return a
//! [`Failure`] instead of panicking, one output line per check, and the exit through semihosting.
//!
//! Output lines (what `embedded/run` reads):
//!
//! ```text
//! ok <name>[: <detail>]
//! FAIL <name>: <file>:<line>: <what>
//! end <passed> <failed> stack <bytes>
//! ```
//!
//! A panic prints `FAIL <name>: panicked ...` for the check that was running and exits with
//! failure, so `end` is missing and the runner counts the run as stopped early.

use core::cell::Cell;
use core::fmt::{self, Write};

use cortex_m::peripheral::{NVIC, SCB, SYST};
use cortex_m_semihosting::{debug, hio};
use critical_section::Mutex;

/// Bytes of the RAM region the segment checks write their ledger into: four 1 KiB flash pages
/// of either board.
pub const REGION_LEN: usize = 4096;

/// What a check may use besides its own `static`s: the core peripherals the interrupt checks
/// program, and a RAM region standing in for a flash area.
pub struct Board {
    /// The SysTick timer.
    pub syst: SYST,
    /// The interrupt controller.
    pub nvic: NVIC,
    /// System control (exception priorities).
    pub scb: SCB,
    /// The "flash" region of the segment checks; its contents are whatever the last check left.
    pub region: &'static mut [u8; REGION_LEN],
}

/// A check: a name and a function that returns a detail line or a failure.
#[derive(Clone, Copy)]
pub struct Check {
    /// `module::what`, printed on the check's line.
    pub name: &'static str,
    /// The check itself.
    pub run: fn(&mut Board) -> Outcome,
}

impl Check {
    /// A check named `name` that runs `run`.
    pub const fn new(name: &'static str, run: fn(&mut Board) -> Outcome) -> Self {
        Self { name, run }
    }
}

/// What a check returns: a detail for its `ok` line (often empty), or what failed.
pub type Outcome = Result<Text, Failure>;

/// Why a check failed: where, and what.
pub struct Failure {
    /// The source file of the failed assertion.
    pub file: &'static str,
    /// Its line.
    pub line: u32,
    /// The assertion and the values involved.
    pub what: Text,
}

impl Failure {
    /// A failure at `file:line` described by `args`.
    pub fn new(file: &'static str, line: u32, args: fmt::Arguments<'_>) -> Self {
        Self {
            file,
            line,
            what: Text::from_fmt(args),
        }
    }
}

/// A short line of text in a fixed buffer; what does not fit is cut (marked with `...`).
#[derive(Clone)]
pub struct Text {
    bytes: [u8; Self::CAPACITY],
    len: usize,
    cut: bool,
}

impl Text {
    const CAPACITY: usize = 160;

    /// Empty text.
    pub const fn new() -> Self {
        Self {
            bytes: [0; Self::CAPACITY],
            len: 0,
            cut: false,
        }
    }

    /// The text `args` formats to (cut to fit).
    pub fn from_fmt(args: fmt::Arguments<'_>) -> Self {
        let mut text = Self::new();
        // `write_str` below never fails: it cuts instead.
        let _ = text.write_fmt(args);
        text
    }

    /// The text so far.
    pub fn as_str(&self) -> &str {
        // Only whole `&str`s are copied in (cut at a char boundary), so this never fails.
        core::str::from_utf8(&self.bytes[..self.len]).unwrap_or("<invalid utf-8>")
    }

    /// Whether nothing was written.
    pub fn is_empty(&self) -> bool {
        self.len == 0
    }
}

impl Default for Text {
    fn default() -> Self {
        Self::new()
    }
}

impl Write for Text {
    fn write_str(&mut self, s: &str) -> fmt::Result {
        let room = Self::CAPACITY - self.len;
        let mut take = s.len().min(room);
        while !s.is_char_boundary(take) {
            take -= 1;
        }
        self.bytes[self.len..self.len + take].copy_from_slice(&s.as_bytes()[..take]);
        self.len += take;
        self.cut |= take < s.len();
        Ok(())
    }
}

impl fmt::Display for Text {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())?;
        if self.cut {
            f.write_str("...")?;
        }
        Ok(())
    }
}

/// Returns early from a check with a [`Failure`] unless the condition holds.
///
/// `ensure!(cond)` names the condition; `ensure!(cond, "format", args..)` says more.
#[macro_export]
macro_rules! ensure {
    ($cond:expr $(,)?) => {
        $crate::ensure!($cond, "{}", stringify!($cond))
    };
    ($cond:expr, $($arg:tt)+) => {
        if !$cond {
            return Err($crate::harness::Failure::new(file!(), line!(), format_args!($($arg)+)));
        }
    };
}

/// Returns early from a check with a [`Failure`] showing both values unless they are equal.
#[macro_export]
macro_rules! ensure_eq {
    ($left:expr, $right:expr $(,)?) => {
        match (&$left, &$right) {
            (left, right) => {
                if !(*left == *right) {
                    return Err($crate::harness::Failure::new(
                        file!(),
                        line!(),
                        format_args!(
                            "{} == {}: {:?} != {:?}",
                            stringify!($left),
                            stringify!($right),
                            left,
                            right
                        ),
                    ));
                }
            }
        }
    };
}

/// The `Ok` value of a `Result`, or an early return with a [`Failure`] showing the error.
#[macro_export]
macro_rules! attempt {
    ($result:expr $(,)?) => {
        match $result {
            Ok(value) => value,
            Err(error) => {
                return Err($crate::harness::Failure::new(
                    file!(),
                    line!(),
                    format_args!("{}: {:?}", stringify!($result), error),
                ))
            }
        }
    };
}

/// A passing check's detail line: `passed!("{} items", n)`, or `passed!()` for none.
#[macro_export]
macro_rules! passed {
    () => {
        Ok($crate::harness::Text::new())
    };
    ($($arg:tt)+) => {
        Ok($crate::harness::Text::from_fmt(format_args!($($arg)+)))
    };
}

/// The check running now, for the panic handler's line.
static RUNNING: Mutex<Cell<&'static str>> = Mutex::new(Cell::new("<none>"));

/// The name of the check running now (`<none>` between checks).
pub fn running() -> &'static str {
    critical_section::with(|cs| RUNNING.borrow(cs).get())
}

/// The counts of a run.
#[derive(Clone, Copy, Debug, Default)]
pub struct Summary {
    /// Checks that passed.
    pub passed: usize,
    /// Checks that failed.
    pub failed: usize,
}

/// Runs every check in order, printing one line for each, and returns the counts.
pub fn run_all(checks: &[Check], board: &mut Board) -> Summary {
    let mut summary = Summary::default();
    for check in checks {
        critical_section::with(|cs| RUNNING.borrow(cs).set(check.name));
        match (check.run)(board) {
            Ok(detail) if detail.is_empty() => {
                summary.passed += 1;
                print(format_args!("ok {}", check.name));
            }
            Ok(detail) => {
                summary.passed += 1;
                print(format_args!("ok {}: {}", check.name, detail));
            }
            Err(failure) => {
                summary.failed += 1;
                print(format_args!(
                    "FAIL {}: {}:{}: {}",
                    check.name, failure.file, failure.line, failure.what
                ));
            }
        }
        critical_section::with(|cs| RUNNING.borrow(cs).set("<none>"));
    }
    summary
}

/// Prints one line to the host's standard output (one semihosting write per line).
pub fn print(args: fmt::Arguments<'_>) {
    let mut line = Line::new();
    // `Line` cuts instead of failing.
    let _ = line.write_fmt(args);
    line.push(b'\n');
    write_host(line.as_bytes());
}

/// Writes raw bytes to the host's standard output.
pub fn write_host(bytes: &[u8]) {
    if let Ok(mut stdout) = hio::hstdout() {
        // Nothing to do if the host refuses output: the exit code still carries the verdict.
        let _ = stdout.write_all(bytes);
    }
}

/// Ends the program: QEMU exits with 0 when `success`, 1 otherwise.
pub fn exit(success: bool) -> ! {
    debug::exit(if success {
        debug::EXIT_SUCCESS
    } else {
        debug::EXIT_FAILURE
    });
    // Reached only without a semihosting host (real hardware with no debugger): stay here.
    loop {
        cortex_m::asm::wfi();
    }
}

/// One output line, longer than a [`Text`] (a failure line holds a name, a place and a text).
struct Line {
    bytes: [u8; 320],
    len: usize,
}

impl Line {
    const fn new() -> Self {
        Self {
            bytes: [0; 320],
            len: 0,
        }
    }

    fn push(&mut self, byte: u8) {
        if self.len == self.bytes.len() {
            self.len -= 1;
        }
        self.bytes[self.len] = byte;
        self.len += 1;
    }

    fn as_bytes(&self) -> &[u8] {
        &self.bytes[..self.len]
    }
}

impl Write for Line {
    fn write_str(&mut self, s: &str) -> fmt::Result {
        // Keep one byte for the newline.
        let room = self.bytes.len() - 1 - self.len;
        let take = s.len().min(room);
        self.bytes[self.len..self.len + take].copy_from_slice(&s.as_bytes()[..take]);
        self.len += take;
        Ok(())
    }
}
