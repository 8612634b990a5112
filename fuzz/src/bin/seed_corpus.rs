//! Writes the seed corpus: `seed_corpus DIR` writes `DIR/<target>/<name>` for every seed of
//! `synod_fuzz::seeds::all()` (real values, encoded as each target reads its input). Run by
//! `scripts/fuzz.sh seeds`; the corpus is kept in the repository.
//!
//! `seed_corpus show TARGET FILE` prints what a target decodes from an input (a finding's
//! reproducer, say), for the decoding targets.

// Built with the fuzz targets' instrumentation, which needs libFuzzer's runtime linked in
// (its `main` is not used: this binary has its own).
use libfuzzer_sys as _;

fn show(target: &str, data: &[u8]) {
    match target {
        "frame" => {
            // As a stream of length-delimited frames, then as one frame's body.
            let mut rest = data;
            while let Some((len, tail)) = rest.split_first_chunk::<4>() {
                let len = (u32::from_be_bytes(*len) as usize).min(tail.len());
                println!("{:?}", synod_transport::frame::decode(&tail[..len]));
                rest = &tail[len..];
            }
            println!("as one body: {:?}", synod_transport::frame::decode(data));
        }
        "record" => println!("{:#?}", postcard::from_bytes::<synod_core::Record>(data)),
        "snapshot" => {
            let body = data.get(8..).unwrap_or_default();
            let len = data
                .first_chunk::<8>()
                .map_or(0, |h| u64::from_le_bytes(*h))
                .min(body.len() as u64) as usize;
            println!(
                "{:#?}",
                postcard::from_bytes::<synod_core::Snapshot>(&body[..len])
            );
        }
        "app_state" | "app_command" => {
            let (which, rest) = data.split_first().unwrap_or((&0, &[]));
            println!(
                "application {}: {} bytes: {:02x?}",
                which % 3,
                rest.len(),
                rest
            );
        }
        "ledger" => println!(
            "{:#?}",
            synod_ledger::Envelope::decode(data.get(3..).unwrap_or_default())
        ),
        "http" => println!("{}", String::from_utf8_lossy(data)),
        _ => eprintln!("no target named {target}"),
    }
}

fn main() {
    let args: Vec<String> = std::env::args().skip(1).collect();
    if let [cmd, target, file] = args.as_slice()
        && cmd == "show"
    {
        show(target, &std::fs::read(file).expect("read the input"));
        return;
    }
    let dir = args
        .first()
        .map_or_else(|| std::path::PathBuf::from("fuzz/corpus"), Into::into);
    let mut n = 0;
    for (target, name, bytes) in synod_fuzz::seeds::all() {
        let d = dir.join(target);
        std::fs::create_dir_all(&d).expect("create the corpus directory");
        std::fs::write(d.join(format!("seed-{name}")), bytes).expect("write a seed");
        n += 1;
    }
    println!("wrote {n} seeds under {}", dir.display());
}
