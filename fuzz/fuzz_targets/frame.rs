//! The peer transport's frames (`synod_transport::frame`), as a node reads them from a
//! connection: the length-delimited stream (a first frame of at most 64 bytes that must be a
//! `Hello`, then frames of up to 16 MiB) and each frame's body (a version byte, then postcard).
//!
//! The protocol messages of the frames read off the stream go to a replica, as the node hands
//! them over (the node routes by group; here every group is the one replica's).
//!
//! Nothing may panic; a frame that decodes must encode and decode back to itself.

#![no_main]

use bytes::BytesMut;
use libfuzzer_sys::fuzz_target;
use synod_fuzz::Driven;
use synod_transport::frame::{self, FRAME_MAX, Frame, FrameError, VERSION};
use tokio_util::codec::{Decoder, LengthDelimitedCodec};

/// The acceptor's limit on the first frame (`HELLO_MAX` in the transport).
const HELLO_MAX: usize = 64;

fn check_body(body: &[u8]) -> Option<Frame> {
    match frame::decode(body) {
        Ok(f) => {
            let again = frame::encode(&f).expect("a decoded frame encodes");
            assert_eq!(again[0], VERSION);
            assert_eq!(frame::decode(&again).as_ref(), Ok(&f), "frame round trip");
            Some(f)
        }
        Err(FrameError::Empty) => {
            assert!(body.is_empty());
            None
        }
        Err(FrameError::Version(v)) => {
            assert_ne!(v, VERSION);
            None
        }
        Err(_) => None,
    }
}

fuzz_target!(|data: &[u8]| {
    // The body of one frame, as the codec hands it over.
    check_body(data);

    // The same bytes as a connection's stream, read the way the acceptor reads it.
    let mut codec = LengthDelimitedCodec::builder()
        .max_frame_length(HELLO_MAX)
        .new_codec();
    let mut buf = BytesMut::from(data);
    let mut first = true;
    let mut replica: Option<Driven> = None;
    // Each iteration consumes bytes or stops, so this ends.
    for _ in 0..data.len() + 1 {
        let next = if buf.is_empty() {
            break;
        } else {
            codec.decode(&mut buf)
        };
        match next {
            Ok(Some(bytes)) => {
                let f = check_body(&bytes);
                if first {
                    // Only a Hello opens a connection; after it, the big limit applies.
                    if !matches!(f, Some(Frame::Hello { .. })) {
                        break;
                    }
                    first = false;
                    codec.set_max_frame_length(FRAME_MAX);
                } else if let Some(Frame::Group { envelope, .. }) = f {
                    let r = replica.get_or_insert_with(Driven::new);
                    r.tick(1);
                    r.message(envelope);
                }
            }
            // Not enough bytes for the frame announced: the connection would wait for more.
            Ok(None) => {
                let _ = codec.decode_eof(&mut buf);
                break;
            }
            // Too long: the connection is closed.
            Err(_) => break,
        }
    }
    if let Some(r) = &mut replica {
        r.live();
    }
});
