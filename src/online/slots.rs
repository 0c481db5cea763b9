//! Where a key lives in a Redis Cluster: its hash slot (CRC16 of the key, or of its `{tag}`,
//! modulo 16384) and the primary that owns the slot, from `CLUSTER SLOTS`.

use redis::Value;

/// Slots in a Redis Cluster.
pub(crate) const SLOTS: usize = 16384;

/// CRC16/XMODEM (polynomial 0x1021, initial 0), the checksum Redis Cluster hashes keys with,
/// one table lookup per byte.
const CRC16_TABLE: [u16; 256] = {
    let mut table = [0u16; 256];
    let mut i = 0;
    while i < 256 {
        let mut crc = (i as u16) << 8;
        let mut bit = 0;
        while bit < 8 {
            crc = if crc & 0x8000 != 0 {
                (crc << 1) ^ 0x1021
            } else {
                crc << 1
            };
            bit += 1;
        }
        table[i] = crc;
        i += 1;
    }
    table
};

fn crc16(bytes: &[u8]) -> u16 {
    bytes.iter().fold(0u16, |crc, &b| {
        (crc << 8) ^ CRC16_TABLE[((crc >> 8) as u8 ^ b) as usize]
    })
}

/// The hash slot of `key`: only the part between the first `{` and the next `}` counts when
/// that part is not empty (a hash tag), as Redis computes it.
pub(crate) fn slot(key: &[u8]) -> u16 {
    let hashed = key
        .iter()
        .position(|&b| b == b'{')
        .and_then(|open| {
            let rest = &key[open + 1..];
            let close = rest.iter().position(|&b| b == b'}')?;
            (close > 0).then(|| &rest[..close])
        })
        .unwrap_or(key);
    crc16(hashed) % SLOTS as u16
}

/// A primary of the cluster, as the cluster announces it.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub(crate) struct Node {
    pub host: String,
    pub port: u16,
}

impl std::fmt::Display for Node {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "{}:{}", self.host, self.port)
    }
}

/// Which primary owns each slot.
#[derive(Debug, Clone)]
pub(crate) struct SlotMap {
    pub nodes: Vec<Node>,
    /// Index into `nodes` per slot; `UNOWNED` for a slot no primary serves.
    owner: Vec<u16>,
}

const UNOWNED: u16 = u16::MAX;

impl SlotMap {
    /// The primary owning `slot`, if one does.
    pub(crate) fn owner(&self, slot: u16) -> Option<usize> {
        match self.owner[slot as usize] {
            UNOWNED => None,
            i => Some(i as usize),
        }
    }

    /// Records a MOVED redirect: `slot` now lives on `node`.
    pub(crate) fn moved(&mut self, slot: u16, node: Node) {
        let i = match self.nodes.iter().position(|n| *n == node) {
            Some(i) => i,
            None => {
                self.nodes.push(node);
                self.nodes.len() - 1
            }
        };
        self.owner[slot as usize] = i as u16;
    }

    /// The primaries that own at least one slot, in the order the cluster listed them.
    pub(crate) fn primaries(&self) -> Vec<Node> {
        let mut owns = vec![false; self.nodes.len()];
        for &o in &self.owner {
            if o != UNOWNED {
                owns[o as usize] = true;
            }
        }
        self.nodes
            .iter()
            .zip(owns)
            .filter(|(_, owns)| *owns)
            .map(|(n, _)| n.clone())
            .collect()
    }

    /// Slots without a primary.
    pub(crate) fn unowned(&self) -> usize {
        self.owner.iter().filter(|&&o| o == UNOWNED).count()
    }

    /// Parses a `CLUSTER SLOTS` reply: `[start, end, [host, port, id, ...], replicas...]` per
    /// range (Redis 7.0 adds a fourth, metadata, element to each node entry). An empty host
    /// means the node that answered (`asked`).
    pub(crate) fn parse(reply: &Value, asked: &Node) -> Result<SlotMap, String> {
        let Value::Array(ranges) = reply else {
            return Err(format!("CLUSTER SLOTS answered {reply:?}"));
        };
        let mut map = SlotMap {
            nodes: Vec::new(),
            owner: vec![UNOWNED; SLOTS],
        };
        for range in ranges {
            let Value::Array(fields) = range else {
                return Err(format!("a CLUSTER SLOTS range is {range:?}"));
            };
            let (Some(start), Some(end), Some(Value::Array(primary))) =
                (fields.first(), fields.get(1), fields.get(2))
            else {
                return Err(format!("a CLUSTER SLOTS range is {fields:?}"));
            };
            let (start, end) = (integer(start)?, integer(end)?);
            let host = match primary.first() {
                Some(Value::BulkString(h)) if !h.is_empty() && h != b"?" => {
                    String::from_utf8_lossy(h).into_owned()
                }
                Some(Value::SimpleString(h)) if !h.is_empty() && h != "?" => h.clone(),
                _ => asked.host.clone(),
            };
            let port = primary.get(1).map(integer).transpose()?.unwrap_or(0);
            if !(0..SLOTS as i64).contains(&start) || !(start..SLOTS as i64).contains(&end) {
                return Err(format!("CLUSTER SLOTS names slots {start}-{end}"));
            }
            let node = Node {
                host,
                port: u16::try_from(port).map_err(|_| format!("port {port}"))?,
            };
            for slot in start..=end {
                map.moved(slot as u16, node.clone());
            }
        }
        Ok(map)
    }
}

fn integer(v: &Value) -> Result<i64, String> {
    match v {
        Value::Int(i) => Ok(*i),
        Value::BulkString(b) => std::str::from_utf8(b)
            .ok()
            .and_then(|s| s.parse().ok())
            .ok_or_else(|| format!("not a number: {v:?}")),
        _ => Err(format!("not a number: {v:?}")),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn slots_are_the_ones_redis_computes() {
        // Values from CLUSTER KEYSLOT on Redis 7.0 (and the Redis Cluster specification).
        // The CRC16/XMODEM check value of the specification.
        assert_eq!(crc16(b"123456789"), 0x31C3);
        assert_eq!(slot(b"foo"), 12182);
        assert_eq!(slot(b"{user1000}.following"), 3443);
        assert_eq!(slot(b"foo{}{bar}"), 8363);
        assert_eq!(slot(b"foo{{bar}}zap"), 4015);
        assert_eq!(slot(b"{bar"), crc16(b"{bar") % 16384);
        assert_eq!(slot(b"fs:p:{svc}:current"), slot(b"svc"));
    }

    #[test]
    fn slots_are_the_ones_redis_rs_computes() {
        use redis::cluster_routing::Slot;
        let keys = (0..20_000).map(|i| match i % 4 {
            0 => format!("fs:banking:realtime_scoring:abc:{i}"),
            1 => format!("fs:banking:{{svc{i}}}:current"),
            2 => format!("x{{}}{{{i}}}"),
            _ => format!("{{{i}"),
        });
        for key in keys {
            assert_eq!(
                Slot::for_key(&key),
                Slot::new(slot(key.as_bytes())).unwrap(),
                "{key}"
            );
        }
    }

    #[test]
    fn a_redis_7_reply_with_node_metadata_parses() {
        let node = |host: &str, port: i64| {
            Value::Array(vec![
                Value::BulkString(host.as_bytes().to_vec()),
                Value::Int(port),
                Value::BulkString(b"id".to_vec()),
                Value::Map(vec![]),
            ])
        };
        let reply = Value::Array(vec![
            Value::Array(vec![
                Value::Int(0),
                Value::Int(8191),
                node("10.0.0.1", 7000),
            ]),
            Value::Array(vec![
                Value::Int(8192),
                Value::Int(16383),
                node("", 7001),
                node("10.0.0.9", 7005),
            ]),
        ]);
        let asked = Node {
            host: "10.0.0.2".into(),
            port: 7001,
        };
        let map = SlotMap::parse(&reply, &asked).unwrap();
        assert_eq!(map.unowned(), 0);
        assert_eq!(
            map.nodes[map.owner(100).unwrap()].to_string(),
            "10.0.0.1:7000"
        );
        assert_eq!(map.nodes[map.owner(9000).unwrap()], asked);
    }
}
