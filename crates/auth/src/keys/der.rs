//! Just enough DER to find the public key in a PEM file: SubjectPublicKeyInfo, X.509
//! certificates and PKCS#1 RSA public keys. Anything unexpected is an error.

pub const SEQUENCE: u8 = 0x30;
pub const INTEGER: u8 = 0x02;
pub const BIT_STRING: u8 = 0x03;
pub const OID: u8 = 0x06;

/// One DER element: its tag, its contents, and the whole encoding.
#[derive(Debug, Clone, Copy)]
pub struct Element<'a> {
    pub tag: u8,
    pub contents: &'a [u8],
    pub encoded: &'a [u8],
}

/// Reads one element from the front of `input`; returns it and the rest.
pub fn read(input: &[u8]) -> Result<(Element<'_>, &[u8]), &'static str> {
    let (&tag, rest) = input.split_first().ok_or("truncated DER")?;
    let (&first, rest) = rest.split_first().ok_or("truncated DER")?;
    let (len, rest) = if first < 0x80 {
        (first as usize, rest)
    } else {
        let n = (first & 0x7f) as usize;
        if n == 0 || n > 4 || rest.len() < n {
            return Err("unsupported DER length");
        }
        let len = rest[..n]
            .iter()
            .fold(0usize, |acc, b| (acc << 8) | *b as usize);
        (len, &rest[n..])
    };
    if rest.len() < len {
        return Err("truncated DER");
    }
    let header_len = input.len() - rest.len();
    Ok((
        Element {
            tag,
            contents: &rest[..len],
            encoded: &input[..header_len + len],
        },
        &rest[len..],
    ))
}

/// Reads an element that must have `tag`.
pub fn expect(input: &[u8], tag: u8) -> Result<(Element<'_>, &[u8]), &'static str> {
    let (el, rest) = read(input)?;
    if el.tag != tag {
        return Err("unexpected DER structure");
    }
    Ok((el, rest))
}

/// Encodes a DER length.
fn push_len(out: &mut Vec<u8>, len: usize) {
    if len < 0x80 {
        out.push(len as u8);
    } else {
        let bytes = len.to_be_bytes();
        let skip = bytes.iter().take_while(|b| **b == 0).count();
        out.push(0x80 | (bytes.len() - skip) as u8);
        out.extend_from_slice(&bytes[skip..]);
    }
}

/// A non-negative INTEGER from big-endian magnitude bytes.
fn push_unsigned(out: &mut Vec<u8>, magnitude: &[u8]) {
    let trimmed = &magnitude[magnitude.iter().take_while(|b| **b == 0).count()..];
    let pad = trimmed.first().is_none_or(|b| b & 0x80 != 0);
    out.push(INTEGER);
    push_len(out, trimmed.len() + usize::from(pad));
    if pad {
        out.push(0);
    }
    out.extend_from_slice(trimmed);
}

/// PKCS#1 `RSAPublicKey ::= SEQUENCE { modulus INTEGER, publicExponent INTEGER }`.
pub fn rsa_public_key(n: &[u8], e: &[u8]) -> Vec<u8> {
    let mut body = Vec::with_capacity(n.len() + e.len() + 16);
    push_unsigned(&mut body, n);
    push_unsigned(&mut body, e);
    let mut out = Vec::with_capacity(body.len() + 4);
    out.push(SEQUENCE);
    push_len(&mut out, body.len());
    out.extend_from_slice(&body);
    out
}

/// Splits PKCS#1 `RSAPublicKey` into (n, e) magnitudes without leading zeros.
pub fn rsa_components(pkcs1: &[u8]) -> Result<(&[u8], &[u8]), &'static str> {
    let (seq, _) = expect(pkcs1, SEQUENCE)?;
    let (n, rest) = expect(seq.contents, INTEGER)?;
    let (e, _) = expect(rest, INTEGER)?;
    let trim = |b: &[u8]| b.iter().take_while(|x| **x == 0).count();
    Ok((
        &n.contents[trim(n.contents)..],
        &e.contents[trim(e.contents)..],
    ))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn rsa_public_key_round_trips() {
        let n = [0x80u8; 256];
        let der = rsa_public_key(&n, &[1, 0, 1]);
        let (n2, e2) = rsa_components(&der).unwrap();
        assert_eq!(n2, &n[..]);
        assert_eq!(e2, &[1, 0, 1]);
    }

    #[test]
    fn rejects_truncated_input() {
        assert!(read(&[0x30]).is_err());
        assert!(read(&[0x30, 0x05, 0x00]).is_err());
        assert!(read(&[0x30, 0x85, 0, 0, 0, 0, 1]).is_err());
        assert!(expect(&[0x02, 0x00], SEQUENCE).is_err());
    }
}
