//! Opaque keyset page tokens. A token carries the last key of its page and a
//! fingerprint of the filters it was issued for, so that it cannot be
//! replayed against other filters.

use base64::Engine;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use funnel_domain::DomainError;

use crate::{Page, Result};

/// Encodes `key` (the last item of a page) for the filters `scope`.
pub fn encode(scope: &str, key: &str) -> String {
    URL_SAFE_NO_PAD.encode(format!("{:016x}|{key}", fingerprint(scope)))
}

/// Decodes a token issued by [`encode`] for the same `scope`; `None` for the
/// empty token (the first page).
pub fn decode(scope: &str, token: &str) -> Result<Option<String>> {
    if token.is_empty() {
        return Ok(None);
    }
    let invalid = || DomainError::invalid("page_token", "is not a token this list returned; start again without it");
    let bytes = URL_SAFE_NO_PAD.decode(token).map_err(|_| invalid())?;
    let text = String::from_utf8(bytes).map_err(|_| invalid())?;
    let Some((hash, key)) = text.split_once('|') else {
        return Err(invalid().into());
    };
    if hash != format!("{:016x}", fingerprint(scope)) {
        return Err(
            DomainError::invalid("page_token", "was issued for different filters; start again without it").into()
        );
    }
    Ok(Some(key.to_owned()))
}

/// Cuts the `page_size + 1` rows a keyset query fetched into a page: the
/// extra row only tells that another page exists, and `key` of the last item
/// shown is where it starts.
pub fn finish<T>(mut items: Vec<T>, page_size: u32, scope: &str, key: impl Fn(&T) -> String) -> Page<T> {
    let has_more = items.len() > page_size as usize;
    items.truncate(page_size as usize);
    let next_page_token = match items.last() {
        Some(last) if has_more => encode(scope, &key(last)),
        _ => String::new(),
    };
    Page { items, next_page_token }
}

/// FNV-1a: stable across builds, unlike std's hasher.
fn fingerprint(scope: &str) -> u64 {
    let mut hash: u64 = 0xcbf2_9ce4_8422_2325;
    for byte in scope.bytes() {
        hash ^= u64::from(byte);
        hash = hash.wrapping_mul(0x0100_0000_01b3);
    }
    hash
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_token_round_trips_for_its_own_filters_only() {
        let token = encode("pipeline=sales", "abc");
        assert_eq!(decode("pipeline=sales", &token).expect("same scope"), Some("abc".to_owned()));
        assert!(decode("pipeline=other", &token).is_err());
        assert!(decode("pipeline=sales", "%%%").is_err());
        assert_eq!(decode("anything", "").expect("first page"), None);
    }

    #[test]
    fn the_extra_row_becomes_the_next_page_token_and_is_not_shown() {
        let page = finish(vec![1, 2, 3], 2, "numbers", |last| last.to_string());
        assert_eq!(page.items, [1, 2]);
        assert_eq!(decode("numbers", &page.next_page_token).expect("own token"), Some("2".to_owned()));
        let last = finish(vec![1, 2], 2, "numbers", |last| last.to_string());
        assert!(last.next_page_token.is_empty(), "no extra row: last page");
    }
}
