//! A real terminal for the dashboard tests: tmux with a server of its own, keys in with
//! `send-keys`, the screen back with `capture-pane`.

use std::path::{Path, PathBuf};
use std::process::Command;
use std::time::{Duration, Instant};

/// A tmux server of its own running one command in a `w`×`h` window; killed on drop.
pub struct Tmux {
    socket: PathBuf,
}

impl Tmux {
    /// Run `command` (through `sh -c`, in `dir`) in a `w`×`h` window.
    pub fn start(dir: &Path, command: &str, (w, h): (u16, u16)) -> Tmux {
        let t = Tmux {
            socket: dir.join("tmux.sock"),
        };
        // The shell reports the exit status once the dashboard returns the terminal.
        let script = format!("{command}; echo \"dashboard exited with $?\"; sleep 600");
        let ok = t
            .tmux()
            .args(["new-session", "-d", "-s", "dash", "-x", &w.to_string()])
            .args(["-y", &h.to_string(), "-c"])
            .arg(dir)
            .args(["sh", "-c", &script])
            .status()
            .unwrap()
            .success();
        assert!(ok, "tmux new-session failed");
        t
    }

    fn tmux(&self) -> Command {
        let mut c = Command::new("tmux");
        c.arg("-S").arg(&self.socket).env_remove("TMUX");
        c
    }

    /// Send keys (tmux key names: `Enter`, `Escape`, or literal text with `-l`).
    pub fn keys(&self, keys: &[&str]) {
        let ok = self
            .tmux()
            .args(["send-keys", "-t", "dash"])
            .args(keys)
            .status()
            .unwrap()
            .success();
        assert!(ok, "send-keys {keys:?}");
    }

    /// Type literal text.
    pub fn text(&self, text: &str) {
        self.keys(&["-l", text]);
    }

    /// The visible screen as text.
    pub fn screen(&self) -> String {
        let out = self
            .tmux()
            .args(["capture-pane", "-p", "-t", "dash"])
            .output()
            .unwrap();
        String::from_utf8_lossy(&out.stdout).into_owned()
    }

    /// The screen once `pred` holds (polled every 50 ms), or a panic showing the last screen.
    pub fn wait(&self, what: &str, pred: impl Fn(&str) -> bool) -> String {
        let deadline = Instant::now() + Duration::from_secs(60);
        loop {
            let s = self.screen();
            if pred(&s) {
                return s;
            }
            assert!(
                Instant::now() < deadline,
                "waited 60 s for {what}; the screen:\n{s}"
            );
            std::thread::sleep(Duration::from_millis(50));
        }
    }

    /// The screen once it shows `text`.
    pub fn wait_for(&self, text: &str) -> String {
        self.wait(text, |s| s.contains(text))
    }
}

impl Drop for Tmux {
    fn drop(&mut self) {
        let _ = self.tmux().arg("kill-server").status();
    }
}
