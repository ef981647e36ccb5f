//! Native TLS (rustls with aws-lc-rs): the certificate chain and key from
//! `[server] tls_cert_file` / `tls_key_file` (read from their systemd
//! credentials under the packaged unit, see [`TlsFile`]), served through a
//! resolver whose certificate [`CertStore::reload`] swaps atomically — `run`
//! calls it on SIGHUP, so a renewed certificate needs no restart. A reload
//! that fails keeps the old certificate and reports why.

use std::path::Path;
use std::sync::{Arc, PoisonError, RwLock};

use rustls::crypto::aws_lc_rs;
use rustls::pki_types::pem::PemObject;
use rustls::pki_types::{CertificateDer, PrivateKeyDer};
use rustls::server::{ClientHello, ResolvesServerCert};
use rustls::sign::CertifiedKey;

use crate::config::TlsFile;

/// Why the TLS files could not be used.
#[derive(Debug, thiserror::Error)]
pub enum TlsError {
    #[error("server.tls_cert_file {file}: {message}")]
    Cert { file: TlsFile, message: String },
    #[error("server.tls_key_file {file}: {message}")]
    Key { file: TlsFile, message: String },
    #[error("TLS setup failed: {0}")]
    Rustls(#[from] rustls::Error),
}

/// The current certificate, swappable at runtime.
#[derive(Debug)]
pub struct CertStore {
    cert_file: TlsFile,
    key_file: TlsFile,
    current: RwLock<Arc<CertifiedKey>>,
}

impl CertStore {
    /// Load both files now, each read as it is.
    pub fn open(cert_file: &Path, key_file: &Path) -> Result<Arc<Self>, TlsError> {
        Self::open_files(&TlsFile::plain(cert_file), &TlsFile::plain(key_file))
    }

    /// Load both files now, each from where [`TlsFile::read_path`] says.
    pub fn open_files(cert_file: &TlsFile, key_file: &TlsFile) -> Result<Arc<Self>, TlsError> {
        let current = load(cert_file, key_file)?;
        Ok(Arc::new(Self {
            cert_file: cert_file.clone(),
            key_file: key_file.clone(),
            current: RwLock::new(current),
        }))
    }

    /// Read the files again; on failure the old certificate stays.
    pub fn reload(&self) -> Result<(), TlsError> {
        let fresh = load(&self.cert_file, &self.key_file)?;
        *self.current.write().unwrap_or_else(PoisonError::into_inner) = fresh;
        Ok(())
    }

    /// The certificate served now.
    pub fn current(&self) -> Arc<CertifiedKey> {
        Arc::clone(&self.current.read().unwrap_or_else(PoisonError::into_inner))
    }

    /// A rustls server configuration that asks this store for every handshake.
    pub fn server_config(self: &Arc<Self>) -> Result<rustls::ServerConfig, TlsError> {
        let config =
            rustls::ServerConfig::builder_with_provider(Arc::new(aws_lc_rs::default_provider()))
                .with_safe_default_protocol_versions()?
                .with_no_client_auth()
                .with_cert_resolver(Arc::clone(self) as Arc<dyn ResolvesServerCert>);
        Ok(config)
    }
}

impl ResolvesServerCert for CertStore {
    fn resolve(&self, _hello: ClientHello<'_>) -> Option<Arc<CertifiedKey>> {
        Some(self.current())
    }
}

fn load(cert_file: &TlsFile, key_file: &TlsFile) -> Result<Arc<CertifiedKey>, TlsError> {
    let cert_err = |message: String| TlsError::Cert {
        file: cert_file.clone(),
        message,
    };
    let key_err = |message: String| TlsError::Key {
        file: key_file.clone(),
        message,
    };
    let chain: Vec<CertificateDer<'static>> = CertificateDer::pem_file_iter(cert_file.read_path())
        .map_err(|e| cert_err(e.to_string()))?
        .collect::<Result<_, _>>()
        .map_err(|e| cert_err(e.to_string()))?;
    if chain.is_empty() {
        return Err(cert_err("no PEM certificate in the file".into()));
    }
    let key =
        PrivateKeyDer::from_pem_file(key_file.read_path()).map_err(|e| key_err(e.to_string()))?;
    let signing = aws_lc_rs::sign::any_supported_type(&key).map_err(|e| key_err(e.to_string()))?;
    let certified = CertifiedKey::new(chain, signing);
    certified
        .keys_match()
        .map_err(|e| key_err(format!("does not match the certificate: {e}")))?;
    Ok(Arc::new(certified))
}
