//! Writing a command's output to stdout without panicking: `println!` panics when the reader
//! has gone (`mfascope sli … | head`), these return the write error to the caller instead, and
//! `main` ends quietly on a broken pipe ([`is_broken_pipe`]). Owns nothing else.

/// `print!` to stdout; on a write error, returns it from the enclosing function (`?`).
macro_rules! out {
    ($($arg:tt)*) => {{
        use std::io::Write as _;
        write!(std::io::stdout().lock(), $($arg)*)?
    }};
}

/// `println!` to stdout; on a write error, returns it from the enclosing function (`?`).
macro_rules! outln {
    ($($arg:tt)*) => {{
        use std::io::Write as _;
        writeln!(std::io::stdout().lock(), $($arg)*)?
    }};
}

pub(crate) use {out, outln};

/// Whether the command failed only because its reader closed stdout (`| head`): the shell's
/// convention is to end quietly then, with status 141 (128 + SIGPIPE).
pub fn is_broken_pipe(e: &anyhow::Error) -> bool {
    e.chain().any(|c| {
        c.downcast_ref::<std::io::Error>()
            .is_some_and(|io| io.kind() == std::io::ErrorKind::BrokenPipe)
    })
}

#[cfg(test)]
mod tests {
    #[test]
    fn a_closed_reader_is_told_apart_from_other_write_errors() {
        let pipe = anyhow::Error::new(std::io::Error::from(std::io::ErrorKind::BrokenPipe))
            .context("writing the SLI table");
        assert!(super::is_broken_pipe(&pipe));
        let full = anyhow::Error::new(std::io::Error::from(std::io::ErrorKind::StorageFull));
        assert!(!super::is_broken_pipe(&full));
    }
}
