//! Field validation shared by the resource types.

use crate::error::Error;

/// Names of every resource: 1-253 characters from `A-Z a-z 0-9 . _ : -` (the IPAM's rule, so
/// a name accepted here is accepted there), not starting with `.`.
pub fn validate_name(field: &str, name: &str) -> Result<(), Error> {
    if name.is_empty() || name.len() > 253 {
        return Err(Error::invalid(field, "use 1-253 characters"));
    }
    if name.starts_with('.') {
        return Err(Error::invalid(field, "must not start with '.'"));
    }
    if let Some(c) = name
        .chars()
        .find(|c| !(c.is_ascii_alphanumeric() || matches!(c, '.' | '_' | ':' | '-')))
    {
        return Err(Error::invalid(
            field,
            format!("character {c:?} is not allowed: use A-Z a-z 0-9 . _ : -"),
        ));
    }
    Ok(())
}

/// An AS number usable on a session: not 0, not AS_TRANS (23456), not 4294967295.
pub fn validate_asn(field: &str, asn: u32) -> Result<(), Error> {
    match asn {
        0 | 23456 | u32::MAX => Err(Error::invalid(
            field,
            format!("AS {asn} is reserved (RFC 7607, RFC 6793, RFC 7300): pick another"),
        )),
        _ => Ok(()),
    }
}

/// A free-text field: at most `max` bytes, no control characters.
pub fn validate_text(field: &str, text: &str, max: usize) -> Result<(), Error> {
    if text.len() > max {
        return Err(Error::invalid(field, format!("use at most {max} bytes")));
    }
    if text.chars().any(char::is_control) {
        return Err(Error::invalid(field, "control characters are not allowed"));
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names() {
        assert!(validate_name("name", "rack-1.a_b:c").is_ok());
        for bad in ["", ".x", "a/b", "a b", "é", &"x".repeat(254)] {
            let e = validate_name("name", bad).unwrap_err();
            assert!(
                matches!(e, Error::Invalid { ref field, .. } if field == "name"),
                "{bad}"
            );
        }
    }

    #[test]
    fn asns() {
        assert!(validate_asn("asn", 65000).is_ok());
        assert!(validate_asn("asn", 4_200_000_000).is_ok());
        for bad in [0, 23456, u32::MAX] {
            assert!(validate_asn("asn", bad).is_err());
        }
    }
}
