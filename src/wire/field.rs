//! Header fields at constant offsets.
//!
//! Every header view splits its fixed part off the buffer once, as a
//! `&[u8; L]`, in its `new_checked`. Each header module then names its
//! fields in a private `mod field`, the way smoltcp's `wire` does
//! (`pub const LENGTH: Field = 4..6`), and its accessors read through those
//! names: `self.header.be16(field::LENGTH)`.
//!
//! Unlike smoltcp's `Range<usize>`, a [`Field`] carries its offset and width
//! in its type. So the offset stays a compile-time constant (every read
//! compiles to one load at a fixed offset), the reader must match the width
//! (`be16` takes only a 2-byte field), and a `const` assertion turns a field
//! that does not fit the fixed part into a compile error. No accessor can
//! read out of bounds, and none carries a runtime bounds check that could
//! panic.

/// `N` bytes at offset `AT` of a header: smoltcp's `AT..AT + N`, as a type.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) struct Field<const AT: usize, const N: usize>;

/// The first `L` bytes of a header, known to be present.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) struct FixedHeader<'a, const L: usize>(&'a [u8; L]);

impl<'a, const L: usize> FixedHeader<'a, L> {
    /// Splits the fixed part off `bytes`; `None` when `bytes` is shorter.
    #[inline]
    pub(crate) fn split_from(bytes: &'a [u8]) -> Option<(Self, &'a [u8])> {
        bytes
            .split_first_chunk::<L>()
            .map(|(fixed, rest)| (FixedHeader(fixed), rest))
    }

    /// The bytes of `field`, as they are on the wire.
    #[inline(always)]
    pub(crate) fn array<const AT: usize, const N: usize>(self, _field: Field<AT, N>) -> [u8; N] {
        const { assert!(AT + N <= L, "field lies outside the fixed header") };
        // The assertion above makes `get` always succeed; the fallback is dead
        // code the optimiser removes, and keeps this function free of panics.
        self.0
            .get(AT..AT + N)
            .and_then(|field| <[u8; N]>::try_from(field).ok())
            .unwrap_or([0; N])
    }

    #[inline(always)]
    pub(crate) fn u8<const AT: usize>(self, field: Field<AT, 1>) -> u8 {
        let [byte] = self.array(field);
        byte
    }

    /// Big-endian (network order) `u16`.
    #[inline(always)]
    pub(crate) fn be16<const AT: usize>(self, field: Field<AT, 2>) -> u16 {
        u16::from_be_bytes(self.array(field))
    }

    /// Big-endian (network order) `u32`.
    #[inline(always)]
    pub(crate) fn be32<const AT: usize>(self, field: Field<AT, 4>) -> u32 {
        u32::from_be_bytes(self.array(field))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn reads_fields_at_their_offsets() {
        let bytes = [0x01, 0x02, 0x03, 0x04, 0x05, 0x06];
        let (fixed, rest) = FixedHeader::<5>::split_from(&bytes).expect("6 >= 5");
        assert_eq!(rest, &[0x06]);
        assert_eq!(fixed.u8(Field::<4, 1>), 0x05);
        assert_eq!(fixed.be16(Field::<1, 2>), 0x0203);
        assert_eq!(fixed.be32(Field::<1, 4>), 0x0203_0405);
        assert_eq!(fixed.array(Field::<0, 2>), [0x01, 0x02]);
    }

    #[test]
    fn split_refuses_short_buffers() {
        assert!(FixedHeader::<5>::split_from(&[0; 4]).is_none());
        assert!(FixedHeader::<5>::split_from(&[]).is_none());
        let (_, rest) = FixedHeader::<5>::split_from(&[0; 5]).expect("exact fit");
        assert!(rest.is_empty());
    }
}
