//! Connection-rate tool for the service benchmarks (benches/e2e-service.sh),
//! run inside pod namespaces:
//!
//!   sy-connrate serve IP:PORT                 accept and close, forever
//!   sy-connrate rate IP:PORT SECONDS THREADS  new TCP connections per second
//!                                             and connect latency (SYN to
//!                                             established: the first packet's
//!                                             trip through the path), as JSON
//!   sy-connrate first IP:PORT TIMEOUT_S       connect until one succeeds; prints
//!                                             the Unix time it did (s, float)
//!
//! Each connection is opened, half-closed by the client and closed by the
//! server in turn (a whole TCP lifecycle). The client's closed ports wait in
//! TIME_WAIT: run the client with net.ipv4.tcp_tw_reuse=1 and a wide
//! ip_local_port_range, as a load generator would be.

use socket2::{Domain, Socket, Type};
use std::net::SocketAddr;
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

fn connect(addr: &SocketAddr, timeout: Duration) -> std::io::Result<Socket> {
    let s = Socket::new(Domain::IPV4, Type::STREAM, None)?;
    s.connect_timeout(&(*addr).into(), timeout)?;
    Ok(s)
}

/// Half-closes and waits for the server's close.
fn finish(s: Socket) {
    use std::io::Read;
    let _ = s.shutdown(std::net::Shutdown::Write);
    let _ = s.set_read_timeout(Some(Duration::from_secs(1)));
    let mut s: std::net::TcpStream = s.into();
    let mut buf = [0u8; 16];
    while matches!(s.read(&mut buf), Ok(n) if n > 0) {}
}

fn serve(addr: SocketAddr) -> std::io::Result<()> {
    let s = Socket::new(Domain::IPV4, Type::STREAM, None)?;
    s.set_reuse_address(true)?;
    s.bind(&addr.into())?;
    s.listen(4096)?;
    let s = std::sync::Arc::new(s);
    let workers: Vec<_> = (0..4)
        .map(|_| {
            let s = s.clone();
            std::thread::spawn(move || loop {
                if let Ok((c, _)) = s.accept() {
                    use std::io::Read;
                    let _ = c.set_read_timeout(Some(Duration::from_secs(1)));
                    let mut c: std::net::TcpStream = c.into();
                    let mut buf = [0u8; 16];
                    while matches!(c.read(&mut buf), Ok(n) if n > 0) {}
                }
            })
        })
        .collect();
    for w in workers {
        let _ = w.join();
    }
    Ok(())
}

fn rate(addr: SocketAddr, secs: f64, threads: usize) {
    let end = Instant::now() + Duration::from_secs_f64(secs);
    let handles: Vec<_> = (0..threads)
        .map(|_| {
            std::thread::spawn(move || {
                let mut lat = Vec::with_capacity(1 << 16);
                let mut errors = 0u64;
                let mut kinds = std::collections::BTreeMap::new();
                while Instant::now() < end {
                    let t0 = Instant::now();
                    match connect(&addr, Duration::from_secs(1)) {
                        Ok(s) => {
                            lat.push(t0.elapsed().as_micros() as u64);
                            finish(s);
                        }
                        Err(e) => {
                            errors += 1;
                            *kinds.entry(format!("{:?}", e.kind())).or_insert(0u64) += 1;
                        }
                    }
                }
                if errors > 0 {
                    eprintln!("errors: {kinds:?}");
                }
                (lat, errors)
            })
        })
        .collect();
    let mut lat = Vec::new();
    let mut errors = 0;
    for h in handles {
        let (l, e) = h.join().expect("worker");
        lat.extend(l);
        errors += e;
    }
    lat.sort_unstable();
    let pct = |p: f64| {
        lat.get(((lat.len() as f64 * p) as usize).min(lat.len().saturating_sub(1)))
            .copied()
            .unwrap_or(0)
    };
    println!(
        "{{\"conns_per_s\": {:.0}, \"p50_us\": {}, \"p99_us\": {}, \"errors\": {}}}",
        lat.len() as f64 / secs,
        pct(0.5),
        pct(0.99),
        errors
    );
}

fn first(addr: SocketAddr, timeout: f64) -> bool {
    let end = Instant::now() + Duration::from_secs_f64(timeout);
    while Instant::now() < end {
        if let Ok(s) = connect(&addr, Duration::from_millis(50)) {
            finish(s);
            let t = SystemTime::now()
                .duration_since(UNIX_EPOCH)
                .unwrap_or_default();
            println!("{:.6}", t.as_secs_f64());
            return true;
        }
        std::thread::sleep(Duration::from_micros(200));
    }
    false
}

fn main() {
    let a: Vec<String> = std::env::args().collect();
    let usage = "usage: sy-connrate serve|rate|first IP:PORT ...";
    let addr: SocketAddr = match a.get(2).and_then(|s| s.parse().ok()) {
        Some(x) => x,
        None => {
            eprintln!("{usage}");
            std::process::exit(2);
        }
    };
    let num = |i: usize, d: f64| a.get(i).and_then(|s| s.parse().ok()).unwrap_or(d);
    match a[1].as_str() {
        "serve" => {
            if let Err(e) = serve(addr) {
                eprintln!("serve: {e}");
                std::process::exit(1);
            }
        }
        "rate" => rate(addr, num(3, 5.0), num(4, 2.0) as usize),
        "first" => {
            if !first(addr, num(3, 10.0)) {
                eprintln!("no connection within the timeout");
                std::process::exit(1);
            }
        }
        _ => {
            eprintln!("{usage}");
            std::process::exit(2);
        }
    }
}
