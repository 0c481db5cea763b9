//! Walking a run of MessagePack items without decoding them: a candidate stores a view's needed
//! features back to back, and a service may pick any subset in any order.

/// Length in bytes of the MessagePack item at the start of `b` (as written by fsctl: nil, bool,
/// ints, floats, str, bin and arrays of those). Panics on truncated input, which fsctl never
/// produces (items are written by this crate).
pub fn item_len(b: &[u8]) -> usize {
    let be = |n: usize| {
        b[1..1 + n]
            .iter()
            .fold(0usize, |acc, &x| (acc << 8) | x as usize)
    };
    match b[0] {
        0x00..=0x7f | 0xe0..=0xff | 0xc0 | 0xc2 | 0xc3 => 1,
        0xcc | 0xd0 => 2,
        0xcd | 0xd1 => 3,
        0xca | 0xce | 0xd2 => 5,
        0xcb | 0xcf | 0xd3 => 9,
        m @ 0xa0..=0xbf => 1 + (m & 0x1f) as usize,
        0xd9 | 0xc4 => 2 + be(1),
        0xda | 0xc5 => 3 + be(2),
        0xdb | 0xc6 => 5 + be(4),
        m @ 0x90..=0x9f => array_len(b, 1, (m & 0x0f) as usize),
        0xdc => array_len(b, 3, be(2)),
        0xdd => array_len(b, 5, be(4)),
        m => unreachable!("fsctl never writes MessagePack marker 0x{m:02x}"),
    }
}

fn array_len(b: &[u8], header: usize, n: usize) -> usize {
    let mut at = header;
    for _ in 0..n {
        at += item_len(&b[at..]);
    }
    at
}

/// Splits `items` into `out`, one slice per item.
pub fn split_items<'a>(mut items: &'a [u8], out: &mut Vec<&'a [u8]>) {
    out.clear();
    while !items.is_empty() {
        let n = item_len(items);
        out.push(&items[..n]);
        items = &items[n..];
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::vector::Value;

    #[test]
    fn splits_every_kind_of_item() {
        let values = vec![
            Value::Null,
            Value::Int(-3),
            Value::Int(1 << 40),
            Value::F32(0.5),
            Value::F64(2.5),
            Value::Bool(true),
            Value::Str("x".repeat(40)),
            Value::Bytes(vec![1; 300]),
            Value::List((0..20).map(|i| Value::F32(i as f32)).collect()),
            Value::List(vec![Value::Null, Value::Str("a".into())]),
        ];
        let mut buf = Vec::new();
        let mut ends = Vec::new();
        for v in &values {
            v.write_msgpack(&mut buf);
            ends.push(buf.len());
        }
        let mut out = Vec::new();
        split_items(&buf, &mut out);
        assert_eq!(out.len(), values.len());
        let mut at = 0;
        for (slice, end) in out.iter().zip(ends) {
            assert_eq!(slice.len(), end - at);
            at = end;
        }
    }
}
