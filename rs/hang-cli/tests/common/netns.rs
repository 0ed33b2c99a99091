//! Network namespaces with shaped links, for the slow-link tests (needs root, iproute2).

use std::process::Command;

/// A network namespace with `lo` up and the addresses 127.0.0.`hosts` on it, each shaped to
/// `rate` (tc syntax, e.g. `2mbit`) in the direction *from* it, through an HTB class with a
/// 50 KB drop-tail queue; deleted on drop (every exit path: panics unwind through it).
pub struct Netns {
    /// The namespace's name (`ip netns exec NAME ...`).
    pub name: String,
}

impl Netns {
    /// Create it: `prefix-<pid>`.
    pub fn new(prefix: &str, hosts: std::ops::RangeInclusive<u8>, rate: &str) -> Self {
        let name = format!("{prefix}-{}", std::process::id());
        let ns = Self { name };
        ns.ip(&["netns", "add", &ns.name]);
        // A real link's MTU: lo's 64 KB TCP segments would not fit the small queues.
        ns.exec(&["ip", "link", "set", "lo", "up", "mtu", "1500"]);
        // And a real NIC's packets: lo passes GSO batches (up to 64 KB) to the qdisc as one
        // packet, which a 50 KB queue drops whole, again and again (TCP then backs off for
        // seconds). One segment per packet, as a NIC puts them on the wire.
        ns.exec(&[
            "ip",
            "link",
            "set",
            "lo",
            "gso_max_segs",
            "1",
            "gso_max_size",
            "1500",
        ]);
        ns.exec(&[
            "tc", "qdisc", "add", "dev", "lo", "root", "handle", "1:", "htb", "default", "99",
        ]);
        ns.exec(&[
            "tc", "class", "add", "dev", "lo", "parent", "1:", "classid", "1:99", "htb", "rate",
            "20gbit",
        ]);
        for host in hosts {
            let addr = format!("127.0.0.{host}");
            let class = format!("1:{host}0");
            ns.exec(&["ip", "addr", "add", &format!("{addr}/8"), "dev", "lo"]);
            ns.exec(&[
                "tc", "class", "add", "dev", "lo", "parent", "1:", "classid", &class, "htb",
                "rate", rate, "ceil", rate, "burst", "16k",
            ]);
            ns.exec(&[
                "tc", "qdisc", "add", "dev", "lo", "parent", &class, "bfifo", "limit", "50000",
            ]);
            ns.exec(&[
                "tc",
                "filter",
                "add",
                "dev",
                "lo",
                "parent",
                "1:",
                "protocol",
                "ip",
                "prio",
                "1",
                "u32",
                "match",
                "ip",
                "src",
                &format!("{addr}/32"),
                "flowid",
                &class,
            ]);
        }
        ns
    }

    fn ip(&self, args: &[&str]) {
        let out = Command::new("ip")
            .args(args)
            .output()
            .expect("ip (iproute2)");
        assert!(
            out.status.success(),
            "ip {args:?}: {} (network namespaces need root)",
            String::from_utf8_lossy(&out.stderr)
        );
    }

    /// Run a setup command inside the namespace.
    fn exec(&self, args: &[&str]) {
        let mut full = vec!["netns", "exec", &self.name];
        full.extend_from_slice(args);
        self.ip(&full);
    }

    /// Change the rate of 127.0.0.`host`'s class (e.g. `10mbit`), while traffic flows.
    pub fn set_rate(&self, host: u8, rate: &str) {
        let class = format!("1:{host}0");
        self.exec(&[
            "tc", "class", "change", "dev", "lo", "parent", "1:", "classid", &class, "htb", "rate",
            rate, "ceil", rate, "burst", "16k",
        ]);
    }

    /// A command that will run inside the namespace.
    pub fn command(&self, program: impl AsRef<std::ffi::OsStr>) -> Command {
        let mut cmd = Command::new("ip");
        cmd.args(["netns", "exec", &self.name]).arg(program);
        cmd
    }

    /// Bytes the shaped class of 127.0.0.`host` has sent: proof the shaping took effect.
    pub fn shaped_bytes(&self, host: u8) -> u64 {
        let out = Command::new("ip")
            .args([
                "netns", "exec", &self.name, "tc", "-s", "class", "show", "dev", "lo",
            ])
            .args(["classid", &format!("1:{host}0")])
            .output()
            .unwrap();
        let text = String::from_utf8_lossy(&out.stdout);
        text.split_whitespace()
            .skip_while(|w| *w != "Sent")
            .nth(1)
            .and_then(|n| n.parse().ok())
            .unwrap_or(0)
    }
}

impl Drop for Netns {
    fn drop(&mut self) {
        // Anything still inside (a child that outlived its Run) would keep it alive.
        if let Ok(out) = Command::new("ip")
            .args(["netns", "pids", &self.name])
            .output()
        {
            for pid in String::from_utf8_lossy(&out.stdout).split_whitespace() {
                let _ = Command::new("kill").args(["-9", pid]).status();
            }
        }
        let _ = Command::new("ip")
            .args(["netns", "del", &self.name])
            .status();
    }
}
