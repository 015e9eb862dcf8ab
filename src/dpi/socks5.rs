//! SOCKS5 UDP relay framing (RFC 1928 §7): clients behind a SOCKS5 proxy send
//! DHT and uTP as `RSV(2)=0 FRAG(1) ATYP(1) DST.ADDR DST.PORT(2) DATA`.
//! Fragmented datagrams (FRAG ≠ 0) cannot be judged alone and are left wrapped.

const ATYP_IPV4: u8 = 1;
const ATYP_DOMAIN: u8 = 3;
const ATYP_IPV6: u8 = 4;

/// The relayed datagram inside a SOCKS5 UDP header, if `d` has one and
/// something follows it.
pub(super) fn unwrap(d: &[u8]) -> Option<&[u8]> {
    let (head, rest) = (d.get(..4)?, d.get(4..)?);
    if head[..3] != [0, 0, 0] {
        return None;
    }
    let addr_len = match head[3] {
        ATYP_IPV4 => 4,
        ATYP_IPV6 => 16,
        ATYP_DOMAIN => {
            let n = usize::from(*rest.first()?);
            if n == 0 {
                return None;
            }
            1 + n
        }
        _ => return None,
    };
    let inner = rest.get(addr_len + 2..)?;
    (!inner.is_empty()).then_some(inner)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn unwraps_each_address_type() {
        let mut v4 = vec![0, 0, 0, 1, 10, 0, 0, 1, 0x1a, 0xe1];
        v4.extend_from_slice(b"d1:ad");
        assert_eq!(unwrap(&v4), Some(&b"d1:ad"[..]));
        let mut v6 = vec![0, 0, 0, 4];
        v6.extend_from_slice(&[0; 18]);
        v6.push(b'x');
        assert_eq!(unwrap(&v6), Some(&b"x"[..]));
        let mut name = vec![0, 0, 0, 3, 3, b'a', b'b', b'c', 0, 80];
        name.extend_from_slice(b"yz");
        assert_eq!(unwrap(&name), Some(&b"yz"[..]));
    }

    #[test]
    fn rejects_fragments_bad_types_and_empty_data() {
        assert_eq!(unwrap(&[0, 0, 1, 1, 10, 0, 0, 1, 0, 80, 7]), None);
        assert_eq!(unwrap(&[0, 0, 0, 2, 10, 0, 0, 1, 0, 80, 7]), None);
        assert_eq!(unwrap(&[0, 1, 0, 1, 10, 0, 0, 1, 0, 80, 7]), None);
        assert_eq!(unwrap(&[0, 0, 0, 1, 10, 0, 0, 1, 0, 80]), None);
        assert_eq!(unwrap(&[0, 0, 0, 3, 0, 0, 80, 7]), None);
        assert_eq!(unwrap(&[0, 0, 0, 3, 200, b'a']), None);
        assert_eq!(unwrap(&[0, 0]), None);
    }
}
