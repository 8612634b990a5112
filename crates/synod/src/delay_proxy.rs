//! `synod delay-proxy`: a userspace TCP proxy that delays every byte by a one-way latency
//! (plus jitter), in both directions, to emulate a WAN link on one machine (this kernel has no
//! netem). Each `--route LISTEN=TARGET` accepts connections on LISTEN and forwards them to
//! TARGET. Jitter never reorders bytes: a chunk is delivered no earlier than the one before it.
//! Bounded: at most `MAX_IN_FLIGHT` bytes per direction wait in the delay line (the reader
//! stops reading, so TCP flow control pushes back on the sender).

use std::net::SocketAddr;
use std::time::Duration;

use anyhow::{Context, Result, bail};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::{TcpListener, TcpStream};
use tokio::sync::mpsc;
use tokio::time::Instant;

/// How to run the proxy.
#[derive(clap::Args, Clone, Debug)]
pub(crate) struct DelayArgs {
    /// `LISTEN=TARGET` address pairs, e.g. `127.0.0.1:17001=127.0.0.1:7001`.
    #[arg(long = "route", required = true)]
    routes: Vec<String>,
    /// One-way delay added to every byte, milliseconds.
    #[arg(long, default_value_t = 50)]
    delay_ms: u64,
    /// Extra random delay, up to this many milliseconds.
    #[arg(long, default_value_t = 0)]
    jitter_ms: u64,
}

/// Chunks of up to this many bytes are delayed together.
const CHUNK: usize = 16 * 1024;
/// Chunks in a direction's delay line (bounds its memory to `CHUNK * DELAY_LINE`).
const DELAY_LINE: usize = 256;

fn parse_route(route: &str) -> Result<(SocketAddr, SocketAddr)> {
    let Some((listen, target)) = route.split_once('=') else {
        bail!("a route is LISTEN=TARGET, not {route:?}");
    };
    Ok((
        listen
            .parse()
            .with_context(|| format!("listen address {listen:?}"))?,
        target
            .parse()
            .with_context(|| format!("target address {target:?}"))?,
    ))
}

/// Runs the proxy until Ctrl-C.
pub(crate) fn run(args: &DelayArgs) -> Result<()> {
    let routes: Vec<(SocketAddr, SocketAddr)> = args
        .routes
        .iter()
        .map(|r| parse_route(r))
        .collect::<Result<_>>()?;
    let delay = Duration::from_millis(args.delay_ms);
    let jitter = Duration::from_millis(args.jitter_ms);
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()?;
    runtime.block_on(async move {
        for (listen, target) in routes {
            let listener = TcpListener::bind(listen)
                .await
                .with_context(|| format!("binding {listen}"))?;
            println!("delaying {listen} -> {target} by {delay:?} (+ up to {jitter:?})");
            tokio::spawn(async move {
                loop {
                    let Ok((inbound, _)) = listener.accept().await else {
                        continue;
                    };
                    tokio::spawn(async move {
                        if let Ok(outbound) = TcpStream::connect(target).await {
                            let _ = inbound.set_nodelay(true);
                            let _ = outbound.set_nodelay(true);
                            splice(inbound, outbound, delay, jitter).await;
                        }
                    });
                }
            });
        }
        tokio::signal::ctrl_c().await?;
        Ok(())
    })
}

/// Forwards both directions with the delay until either side closes.
async fn splice(a: TcpStream, b: TcpStream, delay: Duration, jitter: Duration) {
    let (ar, aw) = a.into_split();
    let (br, bw) = b.into_split();
    let seed = u64::from(std::process::id());
    let one = tokio::spawn(direction(ar, bw, delay, jitter, seed));
    let two = tokio::spawn(direction(br, aw, delay, jitter, seed ^ 0x5555));
    let _ = tokio::join!(one, two);
}

async fn direction(
    mut from: tokio::net::tcp::OwnedReadHalf,
    mut to: tokio::net::tcp::OwnedWriteHalf,
    delay: Duration,
    jitter: Duration,
    seed: u64,
) {
    let (tx, mut rx) = mpsc::channel::<(Instant, Vec<u8>)>(DELAY_LINE);
    let writer = tokio::spawn(async move {
        while let Some((at, bytes)) = rx.recv().await {
            tokio::time::sleep_until(at).await;
            if to.write_all(&bytes).await.is_err() {
                return;
            }
        }
        let _ = to.shutdown().await;
    });
    let mut x = seed | 1;
    let mut last = Instant::now();
    let mut buf = vec![0u8; CHUNK];
    loop {
        let n = match from.read(&mut buf).await {
            Ok(0) | Err(_) => break,
            Ok(n) => n,
        };
        let extra = if jitter.is_zero() {
            Duration::ZERO
        } else {
            x ^= x << 13;
            x ^= x >> 7;
            x ^= x << 17;
            Duration::from_nanos(x % jitter.as_nanos().max(1) as u64)
        };
        // Never before the previous chunk: jitter must not reorder a byte stream.
        let at = (Instant::now() + delay + extra).max(last);
        last = at;
        if tx.send((at, buf[..n].to_vec())).await.is_err() {
            break;
        }
    }
    drop(tx);
    let _ = writer.await;
}
