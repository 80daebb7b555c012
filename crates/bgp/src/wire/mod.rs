//! The BGP-4 wire codec.
//!
//! Two layers, as in smoltcp:
//! - views that only check lengths and decode lazily over `bytes::Bytes`
//!   ([`header::Header`], [`update::UpdateView`], [`prefix::RawNlriIter`]);
//! - owned representations with `parse`, `emit` and `buffer_len`
//!   ([`open::Open`], [`update::Update`], [`notification::Notification`],
//!   [`route_refresh::RouteRefresh`], [`message::Message`]).
//!
//! Contracts that hold for every decoder here: it never panics and always terminates on any
//! input; an error says which NOTIFICATION to send ([`crate::Error::notification`]); unknown
//! code points, capabilities and attributes are kept, never dropped. UPDATEs are decoded with
//! RFC 7606 error handling ([`rfc7606`]). A [`context::DecodeContext`] carries what the OPEN
//! exchange negotiated ([`negotiate::Negotiated`]) and drives both decoding and encoding.
//!
//! Entry points: [`header::frame_len`] to cut messages out of a TCP stream,
//! [`message::decode_message`] to decode one, [`message::Message::emit`] to encode one, and
//! [`packer::UpdatePacker`] to turn many prefixes into few UPDATEs.

pub mod attr;
mod buf;
pub mod capability;
pub mod context;
pub mod header;
pub mod message;
pub mod negotiate;
pub mod notification;
pub mod open;
pub mod packer;
pub mod prefix;
pub mod rfc7606;
pub mod route_refresh;
pub mod update;

pub use attr::{
    Aggregator, AsPath, AsSegment, Community, ExtCommunity, LargeCommunity, MpReach, MpUnreach,
    NextHop, PathAttributes, RawAttribute,
};
pub use capability::{Capability, ExtNextHop, GrFamily, GracefulRestart};
pub use context::{DecodeContext, Families, Family, PeerKind};
pub use header::{Header, frame_len};
pub use message::{KEEPALIVE, Message, Received, decode_message};
pub use negotiate::Negotiated;
pub use notification::{Notification, NotificationCode};
pub use open::{Open, OpenExpectations, OptionalParameter};
pub use packer::UpdatePacker;
pub use prefix::{Nlri, NlriIter, Prefix, Prefix4, Prefix6, RawNlriIter};
pub use rfc7606::{SessionReset, UpdateOutcome};
pub use route_refresh::RouteRefresh;
pub use update::{AttrIter, Update, UpdateView};
