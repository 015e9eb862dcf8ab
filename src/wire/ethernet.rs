//! Ethernet II frames and the VLAN tags (802.1Q, 802.1ad and the legacy 0x9100
//! QinQ tag) that may sit between the MAC header and the IP header.
use super::field::FixedHeader;
use super::ParseError;

/// Ethertypes the parser acts on.
pub mod ethertype {
    pub const IPV4: u16 = 0x0800;
    pub const ARP: u16 = 0x0806;
    pub const IPV6: u16 = 0x86DD;
    /// 802.1Q customer VLAN tag.
    pub const VLAN: u16 = 0x8100;
    /// 802.1ad service VLAN tag (the outer tag of QinQ).
    pub const QINQ: u16 = 0x88A8;
    /// Pre-802.1ad QinQ outer tag, still sent by some switches.
    pub const QINQ_LEGACY: u16 = 0x9100;
}

pub const HEADER_LEN: usize = 14;
pub const VLAN_TAG_LEN: usize = 4;
/// QinQ: an outer service tag and an inner customer tag.
pub const MAX_VLAN_TAGS: usize = 2;

mod field {
    use crate::wire::field::Field;

    pub(super) const DESTINATION: Field<0, 6> = Field;
    pub(super) const SOURCE: Field<6, 6> = Field;
    pub(super) const ETHERTYPE: Field<12, 2> = Field;
}

mod vlan_field {
    use crate::wire::field::Field;

    /// Tag control information: priority (3 bits), drop eligible (1), VLAN
    /// id (12).
    pub(super) const TCI: Field<0, 2> = Field;
    /// The ethertype of what follows the tag.
    pub(super) const ETHERTYPE: Field<2, 2> = Field;
}

/// Whether `ethertype` announces a VLAN tag rather than a payload.
#[inline]
pub fn is_vlan_tpid(ethertype: u16) -> bool {
    matches!(
        ethertype,
        ethertype::VLAN | ethertype::QINQ | ethertype::QINQ_LEGACY
    )
}

/// An Ethernet II frame: MAC header plus everything after it (VLAN tags
/// included, trailing padding included: only the IP layer knows where the
/// packet ends).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct EthernetFrame<'a> {
    header: FixedHeader<'a, HEADER_LEN>,
    payload: &'a [u8],
}

impl<'a> EthernetFrame<'a> {
    #[inline]
    pub fn new_checked(frame: &'a [u8]) -> Result<Self, ParseError> {
        let (header, payload) =
            FixedHeader::split_from(frame).ok_or(ParseError::TruncatedEthernet)?;
        Ok(EthernetFrame { header, payload })
    }

    pub fn dst_mac(&self) -> [u8; 6] {
        self.header.array(field::DESTINATION)
    }

    pub fn src_mac(&self) -> [u8; 6] {
        self.header.array(field::SOURCE)
    }

    #[inline]
    pub fn ethertype(&self) -> u16 {
        self.header.be16(field::ETHERTYPE)
    }

    #[inline]
    pub fn payload(&self) -> &'a [u8] {
        self.payload
    }
}

/// One 4-byte VLAN tag: the TCI and the ethertype of what follows. The TPID
/// that announced it is the previous header's ethertype.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct VlanTag<'a> {
    header: FixedHeader<'a, VLAN_TAG_LEN>,
    payload: &'a [u8],
}

impl<'a> VlanTag<'a> {
    #[inline]
    pub fn new_checked(bytes: &'a [u8]) -> Result<Self, ParseError> {
        let (header, payload) = FixedHeader::split_from(bytes).ok_or(ParseError::TruncatedVlan)?;
        Ok(VlanTag { header, payload })
    }

    /// Tag control information: priority (3 bits), drop eligible (1), VLAN id (12).
    pub fn tci(&self) -> u16 {
        self.header.be16(vlan_field::TCI)
    }

    /// The top three bits of the TCI.
    pub fn priority(&self) -> u8 {
        let [high, _] = self.header.array(vlan_field::TCI);
        high >> 5
    }

    pub fn drop_eligible(&self) -> bool {
        self.tci() & 0x1000 != 0
    }

    #[inline]
    pub fn vlan_id(&self) -> u16 {
        self.tci() & 0x0FFF
    }

    #[inline]
    pub fn ethertype(&self) -> u16 {
        self.header.be16(vlan_field::ETHERTYPE)
    }

    #[inline]
    pub fn payload(&self) -> &'a [u8] {
        self.payload
    }
}

/// What is left of a frame once its VLAN tags are stripped.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Untagged<'a> {
    /// The ethertype of the payload (never a VLAN TPID).
    pub ethertype: u16,
    /// How many tags were stripped: 0, 1 or 2.
    pub vlan_tags: u8,
    /// VLAN ids, outermost first; 0 where there was no tag.
    pub vlan_ids: [u16; MAX_VLAN_TAGS],
    pub payload: &'a [u8],
}

/// Strips up to two VLAN tags from `payload`, whose ethertype is `ethertype`.
#[inline]
pub fn strip_vlan_tags(ethertype: u16, payload: &[u8]) -> Result<Untagged<'_>, ParseError> {
    let mut out = Untagged {
        ethertype,
        vlan_tags: 0,
        vlan_ids: [0; MAX_VLAN_TAGS],
        payload,
    };
    while is_vlan_tpid(out.ethertype) {
        // A third TPID is an error whether or not its bytes are there.
        let slot = out
            .vlan_ids
            .get_mut(usize::from(out.vlan_tags))
            .ok_or(ParseError::TooManyVlanTags)?;
        let tag = VlanTag::new_checked(out.payload)?;
        *slot = tag.vlan_id();
        // Bounded by MAX_VLAN_TAGS through the `get_mut` above.
        out.vlan_tags += 1;
        out.ethertype = tag.ethertype();
        out.payload = tag.payload();
    }
    Ok(out)
}

#[cfg(test)]
mod tests {
    use super::*;

    const MACS: [u8; 12] = [
        0x02, 0x00, 0x00, 0x00, 0x00, 0x02, // dst
        0x02, 0x00, 0x00, 0x00, 0x00, 0x01, // src
    ];

    fn frame(rest: &[u8]) -> Vec<u8> {
        let mut f = MACS.to_vec();
        f.extend_from_slice(rest);
        f
    }

    #[test]
    fn reads_mac_header() {
        let f = frame(&[0x08, 0x06, 0xAA, 0xBB]);
        let eth = EthernetFrame::new_checked(&f).expect("14+ bytes");
        assert_eq!(eth.dst_mac(), [2, 0, 0, 0, 0, 2]);
        assert_eq!(eth.src_mac(), [2, 0, 0, 0, 0, 1]);
        assert_eq!(eth.ethertype(), ethertype::ARP);
        assert_eq!(eth.payload(), &[0xAA, 0xBB]);
    }

    #[test]
    fn short_frame_is_truncated() {
        assert_eq!(
            EthernetFrame::new_checked(&MACS[..]),
            Err(ParseError::TruncatedEthernet)
        );
        let exact = frame(&[0x08, 0x00]);
        assert_eq!(
            EthernetFrame::new_checked(&exact).map(|e| e.payload().len()),
            Ok(0)
        );
    }

    #[test]
    fn reads_vlan_tag_fields() {
        // PCP 5, DEI 1, VID 0xABC; inner ethertype IPv6.
        let bytes = [0xBA, 0xBC, 0x86, 0xDD, 0x60];
        let tag = VlanTag::new_checked(&bytes).expect("4+ bytes");
        assert_eq!(tag.tci(), 0xBABC);
        assert_eq!(tag.priority(), 5);
        assert!(tag.drop_eligible());
        assert_eq!(tag.vlan_id(), 0xABC);
        assert_eq!(tag.ethertype(), ethertype::IPV6);
        assert_eq!(tag.payload(), &[0x60]);
    }

    #[test]
    fn strips_single_8021q_tag() {
        let bytes = [0x00, 0x64, 0x08, 0x00, 0x45];
        let u = strip_vlan_tags(ethertype::VLAN, &bytes).expect("one tag");
        assert_eq!(u.ethertype, ethertype::IPV4);
        assert_eq!(u.vlan_tags, 1);
        assert_eq!(u.vlan_ids, [100, 0]);
        assert_eq!(u.payload, &[0x45]);
    }

    #[test]
    fn strips_qinq_outer_first() {
        for outer in [ethertype::QINQ, ethertype::QINQ_LEGACY, ethertype::VLAN] {
            let bytes = [0x00, 0xC8, 0x81, 0x00, 0x00, 0x64, 0x86, 0xDD];
            let u = strip_vlan_tags(outer, &bytes).expect("two tags");
            assert_eq!(u.ethertype, ethertype::IPV6);
            assert_eq!(u.vlan_tags, 2);
            assert_eq!(u.vlan_ids, [200, 100]);
            assert!(u.payload.is_empty());
        }
    }

    #[test]
    fn untagged_passes_through() {
        let u = strip_vlan_tags(ethertype::ARP, &[1, 2]).expect("no tags");
        assert_eq!(u.vlan_tags, 0);
        assert_eq!(u.ethertype, ethertype::ARP);
        assert_eq!(u.payload, &[1, 2]);
    }

    #[test]
    fn third_tag_is_rejected_even_without_its_bytes() {
        let three = [
            0x00, 0x01, 0x81, 0x00, 0x00, 0x02, 0x81, 0x00, 0x00, 0x03, 0x08, 0x00,
        ];
        assert_eq!(
            strip_vlan_tags(ethertype::QINQ, &three),
            Err(ParseError::TooManyVlanTags)
        );
        assert_eq!(
            strip_vlan_tags(ethertype::QINQ, &three[..8]),
            Err(ParseError::TooManyVlanTags)
        );
    }

    #[test]
    fn cut_tag_is_truncated() {
        assert_eq!(
            strip_vlan_tags(ethertype::VLAN, &[0x00, 0x64, 0x08]),
            Err(ParseError::TruncatedVlan)
        );
    }
}
