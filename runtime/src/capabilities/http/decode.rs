//! Content decoding for `http.fetch`'s `compression`: gzip, deflate, br and
//! zstd, with pure-Rust decoders, under a cap on the *decoded* size.
//!
//! Decoding reads at most `cap + 1` bytes out of the decoder, so a
//! decompression bomb (a megabyte that inflates to a gigabyte) costs the
//! cap in memory and the time to inflate the cap, then ends as "too large",
//! never as memory growth.

use std::io::Read;

/// A content encoding the host decodes.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Encoding {
    /// `gzip` (RFC 1952; several members in a row are read as one body, as
    /// browsers and Go do).
    Gzip,
    /// `deflate`: a zlib stream (RFC 1950), or a raw deflate stream (RFC
    /// 1951) as some servers send it.
    Deflate,
    /// `br` (Brotli, RFC 7932).
    Br,
    /// `zstd` (RFC 8878).
    Zstd,
}

impl Encoding {
    /// The token in `Accept-Encoding` and `Content-Encoding`.
    pub fn token(self) -> &'static str {
        match self {
            Encoding::Gzip => "gzip",
            Encoding::Deflate => "deflate",
            Encoding::Br => "br",
            Encoding::Zstd => "zstd",
        }
    }

    /// The encoding a `Content-Encoding` value names (`x-gzip` is gzip).
    pub fn parse(value: &str) -> Option<Encoding> {
        match value.trim().to_ascii_lowercase().as_str() {
            "gzip" | "x-gzip" => Some(Encoding::Gzip),
            "deflate" => Some(Encoding::Deflate),
            "br" => Some(Encoding::Br),
            "zstd" => Some(Encoding::Zstd),
            _ => None,
        }
    }
}

/// A decoded body.
#[derive(Debug, PartialEq, Eq)]
pub enum Decoded {
    /// The whole body, within the cap.
    Complete(Vec<u8>),
    /// The body decodes to more than the cap: its first `cap` bytes.
    TooLarge(Vec<u8>),
}

/// Decode `wire` (the body as received) under `cap` decoded bytes.
///
/// With `complete` false (the body was cut short: a timeout, the wire
/// cap), whatever decodes before the stream ends is returned as complete;
/// otherwise a stream that ends early, or is not in `encoding` at all, is
/// an error naming the encoding.
pub fn decode(
    encoding: Encoding,
    wire: &[u8],
    cap: u64,
    complete: bool,
) -> Result<Decoded, String> {
    let mut reader: Box<dyn Read + '_> = match encoding {
        Encoding::Gzip => Box::new(flate2::read::MultiGzDecoder::new(wire)),
        Encoding::Deflate if is_zlib(wire) => Box::new(flate2::read::ZlibDecoder::new(wire)),
        Encoding::Deflate => Box::new(flate2::read::DeflateDecoder::new(wire)),
        Encoding::Br => Box::new(brotli_decompressor::Decompressor::new(wire, 16 * 1024)),
        Encoding::Zstd => match ruzstd::decoding::StreamingDecoder::new(wire) {
            Ok(d) => Box::new(d),
            Err(_) if !complete => return Ok(Decoded::Complete(Vec::new())),
            Err(e) => return Err(format!("the body is not valid zstd: {e}")),
        },
    };
    let mut out = Vec::new();
    let mut buf = vec![0u8; 16 * 1024];
    loop {
        if out.len() as u64 > cap {
            out.truncate(cap as usize);
            return Ok(Decoded::TooLarge(out));
        }
        // Never ask for more than one byte past the cap.
        let want = buf.len().min((cap + 1 - out.len() as u64) as usize);
        match reader.read(&mut buf[..want]) {
            Ok(0) => return Ok(Decoded::Complete(out)),
            Ok(n) => out.extend_from_slice(&buf[..n]),
            Err(e) if e.kind() == std::io::ErrorKind::Interrupted => {}
            Err(_) if !complete => return Ok(Decoded::Complete(out)),
            Err(e) => {
                return Err(format!(
                    "the body is not valid {} ({} bytes decoded before the error): {e}",
                    encoding.token(),
                    out.len()
                ));
            }
        }
    }
}

/// A zlib header: compression method 8 (deflate), a window of at most
/// 32 KiB, and a header checksum that divides by 31.
fn is_zlib(wire: &[u8]) -> bool {
    match wire {
        [cmf, flg, ..] => {
            cmf & 0x0f == 8 && cmf >> 4 <= 7 && (u16::from(*cmf) << 8 | u16::from(*flg)) % 31 == 0
        }
        _ => false,
    }
}

#[cfg(test)]
mod tests {
    use std::io::Write;

    use super::*;

    fn gzip(data: &[u8]) -> Vec<u8> {
        let mut e = flate2::write::GzEncoder::new(Vec::new(), flate2::Compression::fast());
        e.write_all(data).unwrap();
        e.finish().unwrap()
    }

    #[test]
    fn every_encoding_round_trips() {
        let text = b"hello compressed world ".repeat(100);
        let mut zlib = flate2::write::ZlibEncoder::new(Vec::new(), flate2::Compression::fast());
        zlib.write_all(&text).unwrap();
        let zlib = zlib.finish().unwrap();
        let mut raw = flate2::write::DeflateEncoder::new(Vec::new(), flate2::Compression::fast());
        raw.write_all(&text).unwrap();
        let raw = raw.finish().unwrap();
        let mut br = Vec::new();
        brotli::BrotliCompress(
            &mut &text[..],
            &mut br,
            &brotli::enc::BrotliEncoderParams::default(),
        )
        .unwrap();
        let zstd = ruzstd::encoding::compress_to_vec(
            &text[..],
            ruzstd::encoding::CompressionLevel::Fastest,
        );
        for (encoding, wire) in [
            (Encoding::Gzip, gzip(&text)),
            (Encoding::Deflate, zlib),
            (Encoding::Deflate, raw),
            (Encoding::Br, br),
            (Encoding::Zstd, zstd),
        ] {
            assert!(wire.len() < text.len() / 4, "{encoding:?} did not compress");
            assert_eq!(
                decode(encoding, &wire, 1 << 20, true).unwrap(),
                Decoded::Complete(text.clone()),
                "{encoding:?}"
            );
        }
    }

    #[test]
    fn the_cap_applies_to_decoded_bytes() {
        let zeros = vec![0u8; 4 << 20];
        let wire = gzip(&zeros);
        assert!(wire.len() < 64 << 10);
        match decode(Encoding::Gzip, &wire, 1 << 20, true).unwrap() {
            Decoded::TooLarge(body) => assert_eq!(body.len(), 1 << 20),
            other => panic!("expected too large, got {other:?}"),
        }
        // Exactly at the cap is fine.
        assert_eq!(
            decode(Encoding::Gzip, &gzip(&zeros[..1000]), 1000, true).unwrap(),
            Decoded::Complete(vec![0; 1000])
        );
    }

    #[test]
    fn a_body_in_another_encoding_is_an_error_naming_it() {
        let err = decode(Encoding::Gzip, b"plain text, not gzip", 1 << 20, true).unwrap_err();
        assert!(err.contains("not valid gzip"), "{err}");
        let err = decode(Encoding::Zstd, &gzip(b"x"), 1 << 20, true).unwrap_err();
        assert!(err.contains("zstd"), "{err}");
        // Cut short: what decodes is kept.
        let wire = gzip(&b"abc".repeat(10_000));
        match decode(Encoding::Gzip, &wire[..wire.len() / 2], 1 << 20, false).unwrap() {
            Decoded::Complete(body) => assert!(!body.is_empty() && body.starts_with(b"abcabc")),
            other => panic!("{other:?}"),
        }
    }

    #[test]
    fn tokens_parse() {
        assert_eq!(Encoding::parse(" X-GZIP "), Some(Encoding::Gzip));
        assert_eq!(Encoding::parse("br"), Some(Encoding::Br));
        assert_eq!(Encoding::parse("compress"), None);
    }
}
