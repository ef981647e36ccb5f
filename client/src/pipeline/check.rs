//! Batches "does the server have this hash?" questions from many jobs into
//! `POST /v1/assets/check` requests of up to `MAX_CHECK_BATCH` hashes. A
//! question leaves at once when a request slot is free (a lone new file
//! waits for nothing); while both slots are busy, questions gather into the
//! next batch (a big scan sends few, large requests).

use std::collections::HashSet;
use std::sync::Arc;

use asset_catalog_proto::{MAX_CHECK_BATCH, Sha256Hex};
use tokio::sync::{Semaphore, mpsc, oneshot};

use crate::api::ApiClient;
use crate::error::TransferError;

type Reply = oneshot::Sender<Result<bool, TransferError>>;

/// Check requests on the wire at once.
const REQUESTS_IN_FLIGHT: usize = 2;

/// Handle to the batching task.
#[derive(Debug, Clone)]
pub struct Checker {
    tx: mpsc::UnboundedSender<(Sha256Hex, Reply)>,
}

impl Checker {
    /// Start the batching task on the current local task set; `max` caps
    /// the size of a batch.
    pub fn spawn(api: ApiClient, max: usize) -> Self {
        let (tx, rx) = mpsc::unbounded_channel();
        actix_rt::spawn(batch_loop(rx, api, max.clamp(1, MAX_CHECK_BATCH)));
        Self { tx }
    }

    /// Is `sha` missing on the server?
    pub async fn is_missing(&self, sha: Sha256Hex) -> Result<bool, TransferError> {
        let (reply, rx) = oneshot::channel();
        self.tx
            .send((sha, reply))
            .map_err(|_| TransferError::Worker)?;
        rx.await.map_err(|_| TransferError::Worker)?
    }
}

async fn batch_loop(
    mut rx: mpsc::UnboundedReceiver<(Sha256Hex, Reply)>,
    api: ApiClient,
    max: usize,
) {
    let in_flight = Arc::new(Semaphore::new(REQUESTS_IN_FLIGHT));
    while let Some(first) = rx.recv().await {
        let mut batch = vec![first];
        while batch.len() < max {
            match rx.try_recv() {
                Ok(item) => batch.push(item),
                Err(_) => break,
            }
        }
        // Wait for a free request slot, gathering questions meanwhile.
        let permit = loop {
            if batch.len() >= max {
                break Arc::clone(&in_flight).acquire_owned().await;
            }
            tokio::select! {
                biased;
                permit = Arc::clone(&in_flight).acquire_owned() => break permit,
                item = rx.recv() => match item {
                    Some(item) => batch.push(item),
                    None => break Arc::clone(&in_flight).acquire_owned().await,
                },
            }
        };
        let Ok(permit) = permit else {
            return;
        };
        let api = api.clone();
        actix_rt::spawn(async move {
            answer(&api, batch).await;
            drop(permit);
        });
    }
}

async fn answer(api: &ApiClient, batch: Vec<(Sha256Hex, Reply)>) {
    let mut unique: Vec<Sha256Hex> = batch.iter().map(|(h, _)| h.clone()).collect();
    unique.sort();
    unique.dedup();
    tracing::debug!(
        hashes = unique.len(),
        "checking which hashes the server lacks"
    );
    match api.check(unique).await {
        Ok(missing) => {
            let missing: HashSet<Sha256Hex> = missing.into_iter().collect();
            for (sha, reply) in batch {
                let _ = reply.send(Ok(missing.contains(&sha)));
            }
        }
        Err(e) => {
            for (_, reply) in batch {
                let _ = reply.send(Err(e.duplicate()));
            }
        }
    }
}
