//! A `nats-server` of a test's own (behind the `testing` feature, for tests only): on a free
//! loopback port, so that a test can stop it and start it again to see what nodes do when their
//! broker goes away and comes back.

use std::path::PathBuf;
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

/// How long [`OwnNats::up`] waits for the server to accept connections.
const START_WITHIN: Duration = Duration::from_secs(20);

/// A `nats-server` child process on a port of its own; stopped when dropped.
pub struct OwnNats {
    bin: PathBuf,
    port: u16,
    child: Option<Child>,
}

impl OwnNats {
    /// Starts one, or `None` (saying why on stderr) when no `nats-server` binary is installed
    /// or it does not start.
    pub fn start() -> Option<OwnNats> {
        let bin = std::env::var_os("PATH")
            .into_iter()
            .flat_map(|p| std::env::split_paths(&p).collect::<Vec<_>>())
            .chain([PathBuf::from("/usr/sbin")])
            .map(|dir| dir.join("nats-server"))
            .find(|p| p.is_file());
        let Some(bin) = bin else {
            eprintln!("skipped: no nats-server binary to restart (apt-get install nats-server)");
            return None;
        };
        let port = std::net::TcpListener::bind("127.0.0.1:0")
            .and_then(|l| l.local_addr())
            .map(|a| a.port())
            .ok()?;
        let mut nats = OwnNats {
            bin,
            port,
            child: None,
        };
        match nats.up() {
            Ok(()) => Some(nats),
            Err(e) => {
                eprintln!("skipped: nats-server did not start: {e}");
                None
            }
        }
    }

    /// Its URL.
    pub fn url(&self) -> String {
        format!("nats://127.0.0.1:{}", self.port)
    }

    /// Starts the server (again), and waits until it accepts connections.
    pub fn up(&mut self) -> std::io::Result<()> {
        let child = Command::new(&self.bin)
            .args(["-a", "127.0.0.1", "-p", &self.port.to_string()])
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()?;
        self.child = Some(child);
        let deadline = Instant::now() + START_WITHIN;
        while std::net::TcpStream::connect(("127.0.0.1", self.port)).is_err() {
            if Instant::now() >= deadline {
                return Err(std::io::Error::new(
                    std::io::ErrorKind::TimedOut,
                    "nats-server did not accept connections",
                ));
            }
            std::thread::sleep(Duration::from_millis(20));
        }
        Ok(())
    }

    /// Stops the server (its clients see the connection drop).
    pub fn down(&mut self) {
        if let Some(mut child) = self.child.take() {
            let _ = child.kill();
            let _ = child.wait();
        }
    }
}

impl Drop for OwnNats {
    fn drop(&mut self) {
        self.down();
    }
}
