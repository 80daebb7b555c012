//! UPDATE decoding with the revised error handling of RFC 7606.
//!
//! Contract: [`Update::decode`] never fails and never panics; it returns an [`UpdateOutcome`]
//! that says what the receiver must do, picking the strongest action when several errors occur
//! (RFC 7606 section 3 h): session reset > treat-as-withdraw > attribute discard > ok.
//!
//! | Case (RFC section)                                            | Outcome                 |
//! |---------------------------------------------------------------|-------------------------|
//! | Withdrawn / attribute length past the message (4271 6.3)      | session reset           |
//! | NLRI or withdrawn routes syntactically wrong (7606 5.3)       | session reset           |
//! | Attribute overruns the attributes (7606 4)                    | treat-as-withdraw       |
//! | ... when that attribute is MP_(UN)REACH_NLRI (7606 5.3)       | session reset           |
//! | Fewer octets left than an attribute header (7606 4)           | treat-as-withdraw       |
//! | MP_(UN)REACH_NLRI repeated (7606 3 g)                         | session reset           |
//! | Any other attribute repeated (7606 3 g)                       | discard the repeats     |
//! | Wrong Optional/Transitive flags (7606 3 c)                    | as malformed, per type  |
//! | Unrecognized well-known attribute (4271 6.3)                  | session reset           |
//! | ORIGIN length or value (7606 7.1)                             | treat-as-withdraw       |
//! | AS_PATH malformed, or AS 0 (7606 7.2, RFC 7607)               | treat-as-withdraw       |
//! | NEXT_HOP length or not a host address (7606 7.3)              | treat-as-withdraw       |
//! | MULTI_EXIT_DISC length (7606 7.4)                             | treat-as-withdraw       |
//! | LOCAL_PREF from an external peer (7606 7.5)                   | attribute discard       |
//! | LOCAL_PREF length from an internal peer (7606 7.5)            | treat-as-withdraw       |
//! | ATOMIC_AGGREGATE length (7606 7.6)                            | attribute discard       |
//! | AGGREGATOR length, or AS 0 (7606 7.7, RFC 7607)               | attribute discard       |
//! | COMMUNITIES length (7606 7.8)                                 | treat-as-withdraw       |
//! | ORIGINATOR_ID / CLUSTER_LIST from an external peer (7606 7.9) | attribute discard       |
//! | ORIGINATOR_ID / CLUSTER_LIST length, internal peer (7606 7.9) | treat-as-withdraw       |
//! | MP_REACH_NLRI next hop length / NLRI (7606 7.11)              | session reset           |
//! | MP_(UN)REACH_NLRI of a family not negotiated                  | attribute discard       |
//! | EXTENDED_COMMUNITIES length (7606 7.14)                       | treat-as-withdraw       |
//! | AS4_PATH / AS4_AGGREGATOR malformed or from a 4-octet peer    | attribute discard       |
//! |   (RFC 6793 section 6)                                        |                         |
//! | LARGE_COMMUNITIES length (RFC 8092 section 6)                 | treat-as-withdraw       |
//! | ORIGIN / AS_PATH missing, or NEXT_HOP missing with classic    | treat-as-withdraw       |
//! |   NLRI, when the UPDATE carries NLRI (7606 3 d)               |                         |
//!
//! Treat-as-withdraw turns every prefix of the UPDATE (Withdrawn Routes, NLRI, MP_UNREACH_NLRI
//! and MP_REACH_NLRI) into a withdrawal (RFC 7606 section 2).

use std::net::Ipv4Addr;

use bytes::Bytes;

use crate::error::Error;
use crate::iana::{Afi, AttrType, Origin, attr_flags as flags};
use crate::wire::attr::{
    Aggregator, AsPath, MpUnreach, RawAttribute, community, defined_flags, mp,
};
use crate::wire::context::{DecodeContext, PeerKind};
use crate::wire::notification::Notification;
use crate::wire::prefix::Nlri;
use crate::wire::update::{Update, UpdateView};

/// A decoding result that ends the session.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SessionReset {
    pub error: Error,
    /// What to send before closing.
    pub notification: Notification,
}

impl SessionReset {
    pub fn new(error: Error) -> Self {
        let notification = error.notification().unwrap_or_else(|| {
            Notification::new(crate::wire::notification::NotificationCode::UpdateMessage(
                crate::iana::UpdateSubcode::Unspecific,
            ))
        });
        Self {
            error,
            notification,
        }
    }
}

/// What to do with a received UPDATE (RFC 7606 section 2).
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum UpdateOutcome {
    /// Everything parsed.
    Ok(Update),
    /// Apply `update`; the attributes listed in `discarded` were removed from it.
    AttributeDiscard {
        update: Update,
        discarded: Vec<Error>,
    },
    /// Do not announce anything: apply `withdrawals`, which holds every prefix of the UPDATE
    /// as a withdrawal (IPv4 in the classic field, IPv6 in MP_UNREACH_NLRI).
    TreatAsWithdraw {
        withdrawals: Update,
        reason: Error,
        discarded: Vec<Error>,
    },
    /// Send the NOTIFICATION and close the session.
    SessionReset(SessionReset),
}

impl UpdateOutcome {
    /// The UPDATE to apply, unless the session must be reset.
    pub fn update(&self) -> Option<&Update> {
        match self {
            Self::Ok(u) | Self::AttributeDiscard { update: u, .. } => Some(u),
            Self::TreatAsWithdraw { withdrawals, .. } => Some(withdrawals),
            Self::SessionReset(_) => None,
        }
    }

    /// The UPDATE to apply, or the reset.
    pub fn into_update(self) -> Result<Update, SessionReset> {
        match self {
            Self::Ok(u) | Self::AttributeDiscard { update: u, .. } => Ok(u),
            Self::TreatAsWithdraw { withdrawals, .. } => Ok(withdrawals),
            Self::SessionReset(r) => Err(r),
        }
    }
}

/// Accumulates the decoded attributes and the errors seen so far.
struct Decoder<'a> {
    ctx: &'a DecodeContext,
    update: Update,
    seen: [u64; 4],
    discarded: Vec<Error>,
    withdraw: Option<Error>,
}

/// How RFC 7606 handles a malformed attribute of each type.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Action {
    Discard,
    Withdraw,
    Reset,
}

fn action_for(code: AttrType) -> Action {
    match code {
        AttrType::MpReachNlri | AttrType::MpUnreachNlri => Action::Reset,
        AttrType::AtomicAggregate
        | AttrType::Aggregator
        | AttrType::As4Path
        | AttrType::As4Aggregator => Action::Discard,
        _ => Action::Withdraw,
    }
}

/// Names the attribute in an unsupported-family error.
fn not_negotiated(code: AttrType, e: Error) -> Error {
    match e {
        Error::UnsupportedFamily { afi, safi } => Error::FamilyNotNegotiated { code, afi, safi },
        other => other,
    }
}

fn ipv4(value: &[u8]) -> Option<Ipv4Addr> {
    let a: [u8; 4] = value.try_into().ok()?;
    Some(Ipv4Addr::from(a))
}

fn u32_value(value: &[u8]) -> Option<u32> {
    let a: [u8; 4] = value.try_into().ok()?;
    Some(u32::from_be_bytes(a))
}

impl Decoder<'_> {
    fn withdraw(&mut self, e: Error) {
        // Keep the first reason; the action is the same.
        self.withdraw.get_or_insert(e);
    }

    /// Applies the RFC 7606 action for a malformed attribute; `Err` means reset.
    fn malformed(&mut self, code: AttrType, e: Error) -> Result<(), Error> {
        match action_for(code) {
            Action::Discard => self.discarded.push(e),
            Action::Withdraw => self.withdraw(e),
            Action::Reset => return Err(e),
        }
        Ok(())
    }

    /// Records a first occurrence; returns false for a repeat.
    fn first_time(&mut self, code: u8) -> bool {
        let (word, bit) = (usize::from(code / 64), 1u64 << (code % 64));
        match self.seen.get_mut(word) {
            Some(w) if *w & bit == 0 => {
                *w |= bit;
                true
            }
            _ => false,
        }
    }

    /// Decodes one attribute into the update; `Err` means the session must be reset.
    fn attribute(&mut self, raw: RawAttribute) -> Result<(), Error> {
        let code = raw.attr_type();
        if !self.first_time(raw.code) {
            if matches!(code, AttrType::MpReachNlri | AttrType::MpUnreachNlri) {
                return Err(Error::MalformedAttributeList {
                    reason: "MP_REACH_NLRI or MP_UNREACH_NLRI appears more than once",
                });
            }
            self.discarded.push(Error::DuplicateAttribute { code });
            return Ok(());
        }
        let Some(expected) = defined_flags(code) else {
            if !raw.is_optional() {
                return Err(Error::UnrecognizedWellKnownAttribute {
                    kind: raw.code,
                    data: raw.to_bytes(),
                });
            }
            self.update.attrs.unknown.push(raw);
            return Ok(());
        };
        let ibgp = self.ctx.peer == PeerKind::Internal;
        // RFC 7606 7.5 and 7.9: these are discarded from external peers whatever they hold.
        if !ibgp
            && matches!(
                code,
                AttrType::LocalPref | AttrType::OriginatorId | AttrType::ClusterList
            )
        {
            self.discarded.push(Error::UnexpectedAttribute {
                code,
                reason: "received from an external peer",
            });
            return Ok(());
        }
        if raw.flags & (flags::OPTIONAL | flags::TRANSITIVE) != expected {
            let e = Error::AttributeFlags {
                code,
                flags: raw.flags,
                data: raw.to_bytes(),
            };
            return self.malformed(code, e);
        }
        // Recorded only once the attribute is kept: a discarded one must leave no trace.
        let partial = raw.is_partial() && expected == flags::OPTIONAL | flags::TRANSITIVE;
        let len = raw.value.len();
        let bad_len = |raw: &RawAttribute| Error::AttributeLength {
            code,
            length: len,
            data: raw.to_bytes(),
        };
        let bad = |raw: &RawAttribute, reason| Error::MalformedAttribute {
            code,
            reason,
            data: raw.to_bytes(),
        };
        let four = self.ctx.four_octet_as;
        let attrs = &mut self.update.attrs;
        match code {
            AttrType::Origin => match raw.value.first().map(|&v| Origin::from(v)) {
                _ if len != 1 => return self.malformed(code, bad_len(&raw)),
                Some(Origin::Other(_)) | None => {
                    return self.malformed(code, bad(&raw, "undefined ORIGIN value"));
                }
                Some(o) => attrs.origin = Some(o),
            },
            AttrType::AsPath => match AsPath::parse(&raw.value, four) {
                Err(reason) => return self.malformed(code, bad(&raw, reason)),
                Ok(p) if p.contains(0) => {
                    return self.malformed(code, bad(&raw, "AS 0 in AS_PATH (RFC 7607)"));
                }
                Ok(p) => attrs.as_path = Some(p),
            },
            AttrType::NextHop => match ipv4(&raw.value) {
                None => return self.malformed(code, bad_len(&raw)),
                Some(a) if a.is_unspecified() || a.is_broadcast() || a.is_multicast() => {
                    return self.malformed(code, bad(&raw, "not a unicast host address"));
                }
                Some(a) => attrs.next_hop = Some(a),
            },
            AttrType::MultiExitDisc => match u32_value(&raw.value) {
                None => return self.malformed(code, bad_len(&raw)),
                Some(v) => attrs.med = Some(v),
            },
            AttrType::LocalPref => match u32_value(&raw.value) {
                None => return self.malformed(code, bad_len(&raw)),
                Some(v) => attrs.local_pref = Some(v),
            },
            AttrType::AtomicAggregate => {
                if len != 0 {
                    return self.malformed(code, bad_len(&raw));
                }
                attrs.atomic_aggregate = true;
            }
            AttrType::Aggregator | AttrType::As4Aggregator => {
                let as4 = code == AttrType::As4Aggregator;
                if as4 && four {
                    return self.malformed(code, bad(&raw, "AS4_AGGREGATOR from a 4-octet peer"));
                }
                match Aggregator::parse(&raw.value, four || as4) {
                    Err(_) => return self.malformed(code, bad_len(&raw)),
                    Ok(a) if a.asn == 0 => {
                        return self.malformed(code, bad(&raw, "AS 0 as aggregator (RFC 7607)"));
                    }
                    Ok(a) if as4 => attrs.as4_aggregator = Some(a),
                    Ok(a) => attrs.aggregator = Some(a),
                }
            }
            AttrType::Communities => match community::parse_communities(&raw.value) {
                Err(_) => return self.malformed(code, bad_len(&raw)),
                Ok(v) => attrs.communities = v,
            },
            AttrType::OriginatorId => match ipv4(&raw.value) {
                None => return self.malformed(code, bad_len(&raw)),
                Some(a) => attrs.originator_id = Some(a),
            },
            AttrType::ClusterList => {
                if len == 0 || !len.is_multiple_of(4) {
                    return self.malformed(code, bad_len(&raw));
                }
                attrs.cluster_list = raw.value.chunks_exact(4).filter_map(ipv4).collect();
            }
            AttrType::ExtendedCommunities => match community::parse_ext_communities(&raw.value) {
                Err(_) => return self.malformed(code, bad_len(&raw)),
                Ok(v) => attrs.extended_communities = v,
            },
            AttrType::As4Path => {
                if four {
                    return self.malformed(code, bad(&raw, "AS4_PATH from a 4-octet peer"));
                }
                match AsPath::parse(&raw.value, true) {
                    Err(reason) => return self.malformed(code, bad(&raw, reason)),
                    Ok(p) if p.contains(0) => {
                        return self.malformed(code, bad(&raw, "AS 0 in AS4_PATH (RFC 7607)"));
                    }
                    Ok(p) => attrs.as4_path = Some(p),
                }
            }
            AttrType::LargeCommunities => match community::parse_large_communities(&raw.value) {
                Err(_) => return self.malformed(code, bad_len(&raw)),
                Ok(v) => attrs.large_communities = v,
            },
            AttrType::MpReachNlri => match mp::parse_mp_reach(&raw, self.ctx)? {
                Ok(m) => self.update.mp_reach = Some(m),
                Err(e) => self.discarded.push(not_negotiated(code, e)),
            },
            AttrType::MpUnreachNlri => match mp::parse_mp_unreach(&raw, self.ctx)? {
                Ok(m) => self.update.mp_unreach = Some(m),
                Err(e) => self.discarded.push(not_negotiated(code, e)),
            },
            // `defined_flags` only knows the types above.
            _ => self.update.attrs.unknown.push(raw),
        }
        if partial {
            self.update.attrs.set_partial(code);
        }
        Ok(())
    }

    /// RFC 7606 section 3 d: mandatory attributes, checked only when there are NLRI.
    fn check_mandatory(&mut self) {
        if !self.update.has_announcements() {
            return;
        }
        let a = &self.update.attrs;
        let missing = if a.origin.is_none() {
            Some(AttrType::Origin)
        } else if a.as_path.is_none() {
            Some(AttrType::AsPath)
        } else if !self.update.nlri.is_empty() && a.next_hop.is_none() {
            Some(AttrType::NextHop)
        } else {
            None
        };
        if let Some(code) = missing {
            self.withdraw(Error::MissingWellKnownAttribute { code });
        }
    }

    fn finish(mut self) -> UpdateOutcome {
        self.check_mandatory();
        self.update.attrs.unknown.sort_by_key(|a| a.code);
        let Some(reason) = self.withdraw else {
            return if self.discarded.is_empty() {
                UpdateOutcome::Ok(self.update)
            } else {
                UpdateOutcome::AttributeDiscard {
                    update: self.update,
                    discarded: self.discarded,
                }
            };
        };
        match withdraw_all(self.update) {
            Ok(withdrawals) => UpdateOutcome::TreatAsWithdraw {
                withdrawals,
                reason,
                discarded: self.discarded,
            },
            Err(e) => UpdateOutcome::SessionReset(SessionReset::new(e)),
        }
    }
}

/// Every prefix of `u` as a withdrawal.
fn withdraw_all(u: Update) -> Result<Update, Error> {
    let mut v4: Vec<&Nlri> = vec![&u.withdrawn, &u.nlri];
    let mut v6: Vec<&Nlri> = Vec::new();
    let mp = u.mp_unreach.iter().map(|m| &m.withdrawn);
    for list in mp.chain(u.mp_reach.iter().map(|m| &m.nlri)) {
        if list.afi() == Afi::Ipv6 {
            v6.push(list)
        } else {
            v4.push(list)
        }
    }
    let withdrawn = Nlri::concat(Afi::Ipv4, v4)?;
    let mp_unreach = if v6.is_empty() {
        None
    } else {
        Some(MpUnreach {
            withdrawn: Nlri::concat(Afi::Ipv6, v6)?,
        })
    };
    Ok(Update {
        withdrawn,
        mp_unreach,
        ..Update::default()
    })
}

impl Update {
    /// Decodes an UPDATE body (the message without its header) with RFC 7606 handling.
    pub fn decode(body: Bytes, ctx: &DecodeContext) -> UpdateOutcome {
        let reset = |e| UpdateOutcome::SessionReset(SessionReset::new(e));
        let view = match UpdateView::parse(body) {
            Ok(v) => v,
            Err(e) => return reset(e),
        };
        let withdrawn = match Nlri::parse(Afi::Ipv4, view.withdrawn_bytes().clone()) {
            Ok(n) => n,
            Err(e) => return reset(e),
        };
        let nlri = match Nlri::parse(Afi::Ipv4, view.nlri_bytes().clone()) {
            Ok(n) => n,
            Err(e) => return reset(e),
        };
        let mut d = Decoder {
            ctx,
            update: Update {
                withdrawn,
                nlri,
                ..Update::default()
            },
            seen: [0; 4],
            discarded: Vec::new(),
            withdraw: None,
        };
        for item in view.attributes() {
            match item {
                Ok(raw) => {
                    if let Err(e) = d.attribute(raw) {
                        return reset(e);
                    }
                }
                // The NLRI inside an overrunning MP attribute cannot be located (7606 5.3).
                Err(e @ Error::AttributeLength { code, .. })
                    if action_for(code) == Action::Reset =>
                {
                    return reset(e);
                }
                Err(e) => d.withdraw(e),
            }
        }
        d.finish()
    }

    /// Decodes an UPDATE body and accepts only a clean result (for tools and tests).
    pub fn parse(body: Bytes, ctx: &DecodeContext) -> Result<Update, Error> {
        match Update::decode(body, ctx) {
            UpdateOutcome::Ok(u) => Ok(u),
            UpdateOutcome::AttributeDiscard { update, discarded } => {
                discarded.into_iter().next().map_or(Ok(update), Err)
            }
            UpdateOutcome::TreatAsWithdraw { reason, .. } => Err(reason),
            UpdateOutcome::SessionReset(r) => Err(r.error),
        }
    }
}
