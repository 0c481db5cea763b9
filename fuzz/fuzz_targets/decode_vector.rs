//! The vector decoder must never panic, whatever bytes a Redis key holds; what it accepts must
//! survive a re-encode and decode unchanged.
#![no_main]

use fsctl::vector::{VectorEncoder, decode};
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    let Ok(v) = decode(data) else { return };
    let items: Vec<Vec<u8>> = v
        .values
        .iter()
        .map(|x| {
            let mut b = Vec::new();
            x.write_msgpack(&mut b);
            b
        })
        .collect();
    let refs: Vec<&[u8]> = items.iter().map(Vec::as_slice).collect();
    let again = VectorEncoder::new(v.fingerprint, refs.len(), 2048).encode_into(&v.view_timestamps, &refs, &mut Vec::new());
    let round = decode(&again).expect("a re-encoded vector decodes");
    assert_eq!(round.fingerprint, v.fingerprint);
    assert_eq!(round.view_timestamps, v.view_timestamps);
    assert_eq!(round.values.len(), v.values.len());
});
