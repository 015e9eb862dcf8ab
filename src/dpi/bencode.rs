//! A bounded, non-allocating bencode reader (BEP 3, "bencoding").
//!
//! DHT KRPC (BEP 5) and the extension handshake (BEP 10) are bencoded. Instead
//! of substring tricks (`d1:ad2:id20:`), the detectors walk the real structure
//! with this reader: every token consumes at least one byte, lengths are checked
//! against what is left before they are used, and nesting is capped, so a walk
//! over any input ends after at most `input.len()` steps and never panics.

/// Nesting deeper than this is not KRPC or BEP 10 and is rejected.
pub(super) const MAX_DEPTH: u8 = 8;

/// Longest integer literal accepted (sign + 19 digits fits an i64).
const MAX_INT_DIGITS: usize = 20;

/// A byte-string length with more digits than this exceeds any datagram.
const MAX_LEN_DIGITS: usize = 7;

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(super) enum Token<'a> {
    /// `d`: a dictionary opens.
    Dict,
    /// `l`: a list opens.
    List,
    /// `e`: the innermost dictionary or list closes.
    End,
    /// `i…e`: the digits (with an optional leading `-`), validated.
    Int(&'a [u8]),
    /// `<len>:<bytes>`.
    Bytes(&'a [u8]),
}

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(super) enum BencodeError {
    /// The input ends inside a token (a segment may end mid-structure).
    Truncated,
    /// Not bencode: a stray byte, a bad length or integer, a non-string key.
    Malformed,
    /// Nested deeper than [`MAX_DEPTH`].
    TooDeep,
}

/// A cursor over one bencoded buffer.
#[derive(Clone, Debug)]
pub(super) struct Reader<'a> {
    buf: &'a [u8],
    pos: usize,
    depth: u8,
}

impl<'a> Reader<'a> {
    pub(super) fn new(buf: &'a [u8]) -> Self {
        Reader {
            buf,
            pos: 0,
            depth: 0,
        }
    }

    /// Offset of the next unread byte.
    pub(super) fn pos(&self) -> usize {
        self.pos
    }

    /// The input between two offsets this reader has returned from `pos()`.
    pub(super) fn buf_slice(&self, start: usize, end: usize) -> Option<&'a [u8]> {
        self.buf.get(start..end)
    }

    /// True when every byte has been read.
    pub(super) fn at_end(&self) -> bool {
        self.pos >= self.buf.len()
    }

    pub(super) fn next_token(&mut self) -> Result<Token<'a>, BencodeError> {
        let rest = self.buf.get(self.pos..).unwrap_or(&[]);
        let first = *rest.first().ok_or(BencodeError::Truncated)?;
        match first {
            b'd' | b'l' => {
                if self.depth >= MAX_DEPTH {
                    return Err(BencodeError::TooDeep);
                }
                self.depth += 1;
                self.pos += 1;
                Ok(if first == b'd' {
                    Token::Dict
                } else {
                    Token::List
                })
            }
            b'e' => {
                self.depth = self.depth.checked_sub(1).ok_or(BencodeError::Malformed)?;
                self.pos += 1;
                Ok(Token::End)
            }
            b'i' => {
                let body = rest.get(1..).unwrap_or(&[]);
                let window = &body[..body.len().min(MAX_INT_DIGITS + 1)];
                let Some(end) = window.iter().position(|&b| b == b'e') else {
                    return if body.len() > MAX_INT_DIGITS {
                        Err(BencodeError::Malformed)
                    } else {
                        Err(BencodeError::Truncated)
                    };
                };
                let digits = &body[..end];
                if !valid_int(digits) {
                    return Err(BencodeError::Malformed);
                }
                self.pos += end + 2;
                Ok(Token::Int(digits))
            }
            b'0'..=b'9' => {
                let window = &rest[..rest.len().min(MAX_LEN_DIGITS + 1)];
                let Some(colon) = window.iter().position(|&b| b == b':') else {
                    return if rest.len() > MAX_LEN_DIGITS {
                        Err(BencodeError::Malformed)
                    } else {
                        Err(BencodeError::Truncated)
                    };
                };
                let digits = &rest[..colon];
                if digits.is_empty()
                    || !digits.iter().all(u8::is_ascii_digit)
                    || (digits.len() > 1 && digits[0] == b'0')
                {
                    return Err(BencodeError::Malformed);
                }
                // At most 7 digits: no overflow in usize.
                let len = digits
                    .iter()
                    .fold(0usize, |n, &d| n * 10 + usize::from(d - b'0'));
                let start = colon + 1;
                let bytes = rest
                    .get(start..start + len)
                    .ok_or(BencodeError::Truncated)?;
                self.pos += start + len;
                Ok(Token::Bytes(bytes))
            }
            _ => Err(BencodeError::Malformed),
        }
    }

    /// Skips one complete value: a scalar, or a dict/list with all it holds.
    pub(super) fn skip_value(&mut self) -> Result<(), BencodeError> {
        let outer = self.depth;
        match self.next_token()? {
            Token::Dict | Token::List => loop {
                if self.next_token()? == Token::End && self.depth == outer {
                    return Ok(());
                }
            },
            Token::End => Err(BencodeError::Malformed),
            Token::Int(_) | Token::Bytes(_) => Ok(()),
        }
    }

    /// Inside a dict: the next key, or `None` when the dict closes.
    pub(super) fn next_key(&mut self) -> Result<Option<&'a [u8]>, BencodeError> {
        match self.next_token()? {
            Token::End => Ok(None),
            Token::Bytes(k) => Ok(Some(k)),
            _ => Err(BencodeError::Malformed),
        }
    }
}

/// `-?[0-9]+` without leading zeros and without `-0` (BEP 3).
fn valid_int(digits: &[u8]) -> bool {
    let unsigned = digits.strip_prefix(b"-").unwrap_or(digits);
    !unsigned.is_empty()
        && unsigned.iter().all(u8::is_ascii_digit)
        && (unsigned.len() == 1 || unsigned[0] != b'0')
        && !(digits[0] == b'-' && unsigned == b"0")
}

#[cfg(test)]
mod tests {
    use super::*;

    fn tokens(input: &[u8]) -> Result<Vec<Token<'_>>, BencodeError> {
        let mut r = Reader::new(input);
        let mut out = Vec::new();
        while !r.at_end() {
            out.push(r.next_token()?);
        }
        Ok(out)
    }

    #[test]
    fn reads_every_kind_of_token() {
        let t = tokens(b"d3:cow3:moo4:spaml1:a1:bei-42ei0ee").unwrap();
        assert_eq!(
            t,
            vec![
                Token::Dict,
                Token::Bytes(b"cow"),
                Token::Bytes(b"moo"),
                Token::Bytes(b"spam"),
                Token::List,
                Token::Bytes(b"a"),
                Token::Bytes(b"b"),
                Token::End,
                Token::Int(b"-42"),
                Token::Int(b"0"),
                Token::End,
            ]
        );
    }

    #[test]
    fn empty_string_is_valid() {
        assert_eq!(tokens(b"0:").unwrap(), vec![Token::Bytes(b"")]);
    }

    #[test]
    fn rejects_bad_integers_and_lengths() {
        for bad in [
            &b"i-0e"[..],
            b"i03e",
            b"ie",
            b"i-e",
            b"i1x2e",
            b"01:a",
            b"x",
            b"e",
        ] {
            assert_eq!(tokens(bad), Err(BencodeError::Malformed), "{bad:?}");
        }
    }

    #[test]
    fn reports_truncation() {
        for cut in [&b"5:abc"[..], b"i12", b"12", b"d3:cow"] {
            let mut r = Reader::new(cut);
            let mut res = Ok(Token::End);
            while res.is_ok() {
                res = r.next_token();
            }
            assert_eq!(res, Err(BencodeError::Truncated), "{cut:?}");
        }
    }

    #[test]
    fn huge_length_is_truncation_not_a_panic() {
        assert_eq!(tokens(b"9999999:a"), Err(BencodeError::Truncated));
        assert_eq!(tokens(b"99999999:a"), Err(BencodeError::Malformed));
    }

    #[test]
    fn depth_is_capped() {
        let deep = [b'l'; MAX_DEPTH as usize + 1];
        let mut r = Reader::new(&deep);
        for _ in 0..MAX_DEPTH {
            assert_eq!(r.next_token(), Ok(Token::List));
        }
        assert_eq!(r.next_token(), Err(BencodeError::TooDeep));
    }

    #[test]
    fn skip_value_skips_nested_structures() {
        let mut r = Reader::new(b"d1:ald1:xi1eee1:b0:e");
        assert_eq!(r.next_token(), Ok(Token::Dict));
        assert_eq!(r.next_key(), Ok(Some(&b"a"[..])));
        r.skip_value().unwrap();
        assert_eq!(r.next_key(), Ok(Some(&b"b"[..])));
        r.skip_value().unwrap();
        assert_eq!(r.next_key(), Ok(None));
        assert!(r.at_end());
        assert_eq!(r.depth, 0);
    }

    #[test]
    fn next_key_rejects_non_string_keys() {
        let mut r = Reader::new(b"di1e1:ae");
        r.next_token().unwrap();
        assert_eq!(r.next_key(), Err(BencodeError::Malformed));
    }
}
