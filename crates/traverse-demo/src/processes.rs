//! The gateways as child processes of this executable, each writing its output to its
//! own log file. Whatever happens to the demo, a started process is stopped and reaped:
//! explicitly at the end, and by `Drop` on every other path.

use std::ffi::OsString;
use std::fs::{File, OpenOptions};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, ExitStatus, Stdio};
use std::time::{Duration, Instant};

use anyhow::Context;
use rustix::process::{kill_process, Pid, Signal};

/// A started process and the file its stdout and stderr go to.
pub struct Process {
    name: String,
    child: Option<Child>,
    log: PathBuf,
    program: PathBuf,
    args: Vec<OsString>,
    directory: PathBuf,
}

impl Process {
    /// Starts `program args` in `directory`, appending its output to `log`. `OTEL_*`
    /// variables are not passed on: the demo's configuration alone decides telemetry.
    pub fn spawn(
        name: &str,
        program: &Path,
        args: &[OsString],
        directory: &Path,
        log: &Path,
    ) -> anyhow::Result<Process> {
        let mut process = Process {
            name: name.to_owned(),
            child: None,
            log: log.to_owned(),
            program: program.to_owned(),
            args: args.to_vec(),
            directory: directory.to_owned(),
        };
        process.start()?;
        Ok(process)
    }

    /// Starts the process again after it was stopped (same command, same log).
    pub fn restart(&mut self) -> anyhow::Result<()> {
        self.kill();
        self.start()
    }

    fn start(&mut self) -> anyhow::Result<()> {
        let output = OpenOptions::new()
            .create(true)
            .append(true)
            .open(&self.log)
            .with_context(|| format!("creating {}", self.log.display()))?;
        let errors = output
            .try_clone()
            .with_context(|| format!("opening {} twice", self.log.display()))?;
        let mut command = Command::new(&self.program);
        command
            .args(&self.args)
            .current_dir(&self.directory)
            .stdin(Stdio::null())
            .stdout(output)
            .stderr(errors);
        for (variable, _) in std::env::vars_os() {
            if variable.to_string_lossy().starts_with("OTEL_") {
                command.env_remove(variable);
            }
        }
        let child = command
            .spawn()
            .with_context(|| format!("starting {} ({})", self.name, self.program.display()))?;
        self.child = Some(child);
        Ok(())
    }

    pub fn name(&self) -> &str {
        &self.name
    }

    /// The exit status, once the process has exited (it is reaped then).
    pub fn exited(&mut self) -> Option<ExitStatus> {
        self.child.as_mut()?.try_wait().ok().flatten()
    }

    /// SIGKILL, then reaped: the way to make it vanish mid-request.
    pub fn kill(&mut self) {
        if let Some(mut child) = self.child.take() {
            let _ = child.kill();
            let _ = child.wait();
        }
    }

    /// Sends SIGINT if the process is still running.
    fn interrupt(&mut self) {
        if let Some(child) = self.child.as_mut() {
            if matches!(child.try_wait(), Ok(None)) {
                let _ = kill_process(Pid::from_child(child), Signal::INT);
            }
        }
    }

    fn running(&mut self) -> bool {
        self.child
            .as_mut()
            .is_some_and(|c| matches!(c.try_wait(), Ok(None)))
    }

    /// The last `lines` lines of the log, for an error message.
    pub fn log_tail(&self, lines: usize) -> String {
        tail(&self.log, lines)
    }

    /// An error about this process, with its log file and the end of that log.
    pub fn failure(&self, message: impl std::fmt::Display) -> anyhow::Error {
        let tail = self.log_tail(20);
        let tail = if tail.is_empty() {
            "    (empty)".to_owned()
        } else {
            tail.lines()
                .map(|l| format!("    {l}"))
                .collect::<Vec<_>>()
                .join("\n")
        };
        anyhow::anyhow!(
            "{message}\n  log: {}\n  last lines:\n{tail}",
            self.log.display()
        )
    }
}

/// Stops every process: SIGINT (a gateway's exit-now path, which still flushes its
/// telemetry), then SIGKILL for those still running after `grace`; all are reaped.
pub fn stop_all<'a>(processes: impl IntoIterator<Item = &'a mut Process>, grace: Duration) {
    let mut processes: Vec<&mut Process> = processes.into_iter().collect();
    for process in &mut processes {
        process.interrupt();
    }
    let deadline = Instant::now() + grace;
    while processes.iter_mut().any(|p| p.running()) && Instant::now() < deadline {
        std::thread::sleep(Duration::from_millis(20));
    }
    for process in processes {
        process.kill();
    }
}

impl Drop for Process {
    fn drop(&mut self) {
        self.kill();
    }
}

fn tail(path: &Path, lines: usize) -> String {
    let text = File::open(path)
        .and_then(|mut f| {
            let mut text = String::new();
            std::io::Read::read_to_string(&mut f, &mut text).map(|_| text)
        })
        .unwrap_or_default();
    let all: Vec<&str> = text.lines().collect();
    all[all.len().saturating_sub(lines)..].join("\n")
}

#[cfg(test)]
mod tests {
    use super::*;

    fn shell(dir: &Path, name: &str, script: &str) -> Process {
        Process::spawn(
            name,
            Path::new("/bin/sh"),
            &["-c".into(), script.into()],
            dir,
            &dir.join(format!("{name}.log")),
        )
        .expect("sh starts")
    }

    fn wait_exit(process: &mut Process) -> Option<ExitStatus> {
        let deadline = Instant::now() + Duration::from_secs(5);
        while Instant::now() < deadline {
            if let Some(status) = process.exited() {
                return Some(status);
            }
            std::thread::sleep(Duration::from_millis(10));
        }
        None
    }

    #[test]
    fn output_goes_to_the_log_and_exit_is_seen() {
        let dir = tempfile::tempdir().expect("temp dir");
        let mut process = shell(dir.path(), "talker", "echo out; echo err >&2; pwd; exit 3");
        let status = wait_exit(&mut process).expect("it exits");
        assert_eq!(status.code(), Some(3));
        let tail = process.log_tail(10);
        assert!(tail.contains("out") && tail.contains("err"), "{tail}");
        let pwd = std::fs::canonicalize(dir.path()).expect("canonical");
        assert!(tail.contains(&*pwd.to_string_lossy()), "{tail}");
        assert_eq!(process.log_tail(1).lines().count(), 1);
        let message = format!("{}", process.failure("talker stopped"));
        assert!(message.starts_with("talker stopped\n  log: "), "{message}");
        assert!(message.contains("    err"), "{message}");
    }

    #[test]
    fn otel_variables_are_not_passed_on() {
        let dir = tempfile::tempdir().expect("temp dir");
        let mut process = shell(dir.path(), "env", "env");
        wait_exit(&mut process).expect("it exits");
        // The test's own environment may or may not have OTEL_* set: either way none may show.
        assert!(!process.log_tail(1000).contains("OTEL_"));
    }

    #[test]
    fn stop_interrupts_and_escalates_to_kill() {
        let dir = tempfile::tempdir().expect("temp dir");
        let mut polite = shell(dir.path(), "polite", "exec sleep 30");
        let started = Instant::now();
        stop_all([&mut polite], Duration::from_secs(10));
        assert!(started.elapsed() < Duration::from_secs(5));
        assert!(
            polite.exited().is_none(),
            "reaped, nothing left to wait for"
        );

        // Ignores SIGINT: killed once the grace period is over.
        let mut stubborn = shell(dir.path(), "stubborn", "trap '' INT; exec sleep 30");
        std::thread::sleep(Duration::from_millis(100));
        let started = Instant::now();
        stop_all([&mut stubborn], Duration::from_millis(300));
        let took = started.elapsed();
        assert!(
            took >= Duration::from_millis(300) && took < Duration::from_secs(5),
            "{took:?}"
        );
    }

    #[test]
    fn kill_restart_and_drop() {
        let dir = tempfile::tempdir().expect("temp dir");
        let mut process = shell(dir.path(), "sleeper", "echo started; exec sleep 30");
        let logged = |process: &Process, lines: usize| {
            let deadline = Instant::now() + Duration::from_secs(5);
            while process.log_tail(10).lines().count() < lines && Instant::now() < deadline {
                std::thread::sleep(Duration::from_millis(10));
            }
        };
        logged(&process, 1);
        let pid = process.child.as_ref().map(Child::id).expect("running");
        process.kill();
        assert!(
            !Path::new(&format!("/proc/{pid}")).exists(),
            "killed and reaped"
        );
        process.restart().expect("starts again");
        let second = process
            .child
            .as_ref()
            .map(Child::id)
            .expect("running again");
        assert_ne!(pid, second);
        logged(&process, 2);
        assert_eq!(
            process.log_tail(10),
            "started\nstarted",
            "the log is appended to"
        );
        drop(process);
        assert!(
            !Path::new(&format!("/proc/{second}")).exists(),
            "drop kills and reaps"
        );
    }
}
