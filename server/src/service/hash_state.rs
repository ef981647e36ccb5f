//! The SHA-256 state of an upload in progress as bytes the index can keep, so
//! that any server can go on hashing a resumable upload where the last
//! stored part left off ([`save`], [`restore`]). It promises: what [`save`]
//! wrote, [`restore`] reads back into a hasher that continues exactly as the
//! saved one would have; anything else is refused with a [`HashStateError`],
//! never a panic.
//!
//! The bytes are a format tag ([`FORMAT`]) and sha2's own serialised state
//! (`SerializableState`: the eight state words, the count of blocks hashed
//! and the buffered tail of the last, incomplete block). digest promises that
//! serialisation only within one 0.x line of sha2; the tag is what a later
//! sha2 with another layout would change, so an old state is refused rather
//! than misread. The tail is up to 63 bytes of the upload's content: keep the
//! state as private as the upload.
//!
//! A state that decodes but is wrong (damaged in the index) cannot make
//! unverified bytes visible: the final digest then differs from the declared
//! one and the upload is aborted.

use sha2::Sha256;
use sha2::digest::common::hazmat::{SerializableState, SerializedState};
use sha2::digest::typenum::Unsigned;

/// Tag of the layout [`save`] writes: sha2 0.11's serialised state.
pub const FORMAT: u8 = 1;

/// Length of sha2's serialised state of a [`Sha256`].
const STATE_LEN: usize = <<Sha256 as SerializableState>::SerializedStateSize as Unsigned>::USIZE;

/// Length of what [`save`] returns: the tag and the state.
pub const SAVED_LEN: usize = 1 + STATE_LEN;

/// Why saved bytes cannot be restored.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum HashStateError {
    #[error("a saved SHA-256 state is {SAVED_LEN} bytes long, not {0}")]
    Length(usize),
    #[error("unknown SHA-256 state format {0} (this server reads format {FORMAT})")]
    Format(u8),
    #[error("the saved SHA-256 state is corrupt")]
    Corrupt,
}

/// The state of `hasher`, to [`restore`] later (in this process or another).
pub fn save(hasher: &Sha256) -> Vec<u8> {
    let state = hasher.serialize();
    let mut saved = Vec::with_capacity(SAVED_LEN);
    saved.push(FORMAT);
    saved.extend_from_slice(&state);
    saved
}

/// A hasher in the state [`save`] recorded in `bytes`.
pub fn restore(bytes: &[u8]) -> Result<Sha256, HashStateError> {
    let (&tag, state) = bytes
        .split_first()
        .ok_or(HashStateError::Length(bytes.len()))?;
    if bytes.len() != SAVED_LEN {
        return Err(HashStateError::Length(bytes.len()));
    }
    if tag != FORMAT {
        return Err(HashStateError::Format(tag));
    }
    let state = SerializedState::<Sha256>::try_from(state)
        .map_err(|_| HashStateError::Length(bytes.len()))?;
    Sha256::deserialize(&state).map_err(|_| HashStateError::Corrupt)
}

#[cfg(test)]
mod tests {
    use sha2::Digest;

    use super::*;

    /// Bytes that are not all alike, so a misplaced byte changes the digest.
    fn message(len: usize) -> Vec<u8> {
        (0..len).map(|i| (i * 31 % 251) as u8).collect()
    }

    #[test]
    fn two_halves_with_a_save_between_hash_like_the_whole() {
        // Cuts inside a block, on a block boundary and at the ends.
        for (len, cut) in [(1000, 500), (1000, 64), (1000, 0), (1000, 1000), (130, 127)] {
            let whole = message(len);
            let mut first = Sha256::new();
            first.update(&whole[..cut]);
            let saved = save(&first);
            assert_eq!(saved.len(), SAVED_LEN);
            drop(first);
            let mut second = restore(&saved).expect("restore");
            second.update(&whole[cut..]);
            assert_eq!(
                second.finalize(),
                Sha256::digest(&whole),
                "{len} bytes cut at {cut}"
            );
        }
    }

    #[test]
    fn saving_does_not_disturb_the_hasher() {
        let whole = message(300);
        let mut hasher = Sha256::new();
        hasher.update(&whole[..100]);
        let _ = save(&hasher);
        hasher.update(&whole[100..]);
        assert_eq!(hasher.finalize(), Sha256::digest(&whole));
    }

    #[test]
    fn garbage_is_refused() {
        let good = save(&Sha256::new());
        assert!(matches!(restore(&[]), Err(HashStateError::Length(0))));
        assert!(matches!(
            restore(&good[..SAVED_LEN - 1]),
            Err(HashStateError::Length(n)) if n == SAVED_LEN - 1
        ));
        let mut longer = good.clone();
        longer.push(0);
        assert!(matches!(restore(&longer), Err(HashStateError::Length(_))));
        let mut other_format = good.clone();
        other_format[0] = FORMAT + 1;
        assert_eq!(
            restore(&other_format).err(),
            Some(HashStateError::Format(FORMAT + 1))
        );
        // A buffered-tail length past the block size.
        assert_eq!(
            restore(&[&[FORMAT][..], &[0xff; STATE_LEN]].concat()).err(),
            Some(HashStateError::Corrupt)
        );
        assert_eq!(
            restore(&b"not a hash state".repeat(7)[..SAVED_LEN]).err(),
            Some(HashStateError::Format(b'n'))
        );
    }
}
