//! The Kafka connection every client shares: brokers, TLS and SASL (`[kafka]` security
//! settings). [`KafkaConfig::client_config`] is the one place they become librdkafka
//! properties; the producer, the consumer and the dead-letter clients all start from it.
//!
//! librdkafka is built with OpenSSL (vendored, see the root `Cargo.toml`): TLS, mutual TLS,
//! SASL `PLAIN`, `SCRAM-SHA-256/512` and `OAUTHBEARER` (OIDC, through the vendored libcurl).
//! GSSAPI (Kerberos) is not built in.

use std::path::Path;

use rdkafka::config::ClientConfig;
use rustls_pki_types::pem::PemObject as _;
use rustls_pki_types::{CertificateDer, PrivateKeyDer};

use crate::config::{invalid, ConfigError, KafkaConfig, SaslMechanism};

impl KafkaConfig {
    /// The librdkafka settings every client of these brokers needs: `bootstrap.servers` and
    /// the security settings. Callers add their own settings on top. Fails (naming the field)
    /// when `sasl_password_file` cannot be read.
    pub fn client_config(&self) -> Result<ClientConfig, ConfigError> {
        let mut c = ClientConfig::new();
        c.set("bootstrap.servers", &self.brokers)
            .set("security.protocol", self.security_protocol.as_str());
        if self.security_protocol.tls() {
            let files = [
                ("ssl.ca.location", &self.ssl_ca_file),
                ("ssl.certificate.location", &self.ssl_cert_file),
                ("ssl.key.location", &self.ssl_key_file),
            ];
            for (key, path) in files {
                if let Some(path) = path {
                    c.set(key, path.display().to_string());
                }
            }
            if self.ssl_ca_file.is_none() {
                // The system's CA store: OpenSSL is vendored, its compiled-in default path
                // (/usr/local/ssl) is not where distributions keep the certificates, so let
                // librdkafka look in the usual places.
                c.set("ssl.ca.location", "probe");
            }
        }
        if self.security_protocol.sasl() {
            let password = self.sasl_password()?;
            c.set("sasl.mechanism", self.sasl_mechanism.as_str());
            if self.sasl_mechanism == SaslMechanism::OauthBearer {
                c.set("sasl.oauthbearer.method", "oidc")
                    .set("sasl.oauthbearer.client.id", &self.sasl_username)
                    .set("sasl.oauthbearer.client.secret", password)
                    .set(
                        "sasl.oauthbearer.token.endpoint.url",
                        &self.sasl_oauthbearer_token_endpoint,
                    );
                if !self.sasl_oauthbearer_scope.is_empty() {
                    c.set("sasl.oauthbearer.scope", &self.sasl_oauthbearer_scope);
                }
                if !self.sasl_oauthbearer_extensions.is_empty() {
                    c.set(
                        "sasl.oauthbearer.extensions",
                        &self.sasl_oauthbearer_extensions,
                    );
                }
            } else {
                c.set("sasl.username", &self.sasl_username)
                    .set("sasl.password", password);
            }
        }
        Ok(c)
    }

    /// The SASL password: `sasl_password`, or the content of `sasl_password_file`.
    fn sasl_password(&self) -> Result<String, ConfigError> {
        let Some(path) = &self.sasl_password_file else {
            return Ok(self.sasl_password.clone());
        };
        let field = "kafka.sasl_password_file";
        if !self.sasl_password.is_empty() {
            return Err(invalid(
                field,
                "set either kafka.sasl_password or kafka.sasl_password_file, not both",
            ));
        }
        let text = std::fs::read_to_string(path)
            .map_err(|e| invalid(field, format!("cannot read {}: {e}", path.display())))?;
        Ok(text.trim().to_owned())
    }

    /// Checks the TLS and SASL settings: they fit the protocol, the files exist and parse.
    pub(crate) fn validate_security(&self) -> Result<(), ConfigError> {
        let protocol = self.security_protocol;
        let tls_files = [
            ("kafka.ssl_ca_file", &self.ssl_ca_file),
            ("kafka.ssl_cert_file", &self.ssl_cert_file),
            ("kafka.ssl_key_file", &self.ssl_key_file),
        ];
        for (field, path) in tls_files {
            if path.is_some() && !protocol.tls() {
                return Err(invalid(
                    field,
                    format!(
                        "is set but kafka.security_protocol is {} (use ssl or sasl_ssl)",
                        protocol.as_str()
                    ),
                ));
            }
        }
        if let Some(path) = &self.ssl_ca_file {
            check_ca_file("kafka.ssl_ca_file", path)?;
        }
        match (&self.ssl_cert_file, &self.ssl_key_file) {
            (Some(_), None) => {
                return Err(invalid(
                    "kafka.ssl_key_file",
                    "must be set with kafka.ssl_cert_file",
                ))
            }
            (None, Some(_)) => {
                return Err(invalid(
                    "kafka.ssl_cert_file",
                    "must be set with kafka.ssl_key_file",
                ))
            }
            (Some(cert), Some(key)) => {
                check_certs("kafka.ssl_cert_file", cert)?;
                check_key("kafka.ssl_key_file", key)?;
            }
            (None, None) => {}
        }

        if !protocol.sasl() {
            let sasl_set = [
                ("kafka.sasl_username", self.sasl_username.is_empty()),
                ("kafka.sasl_password", self.sasl_password.is_empty()),
                (
                    "kafka.sasl_password_file",
                    self.sasl_password_file.is_none(),
                ),
            ];
            if let Some((field, _)) = sasl_set.iter().find(|(_, unset)| !unset) {
                return Err(invalid(
                    field,
                    format!(
                        "is set but kafka.security_protocol is {} (use sasl_plaintext or sasl_ssl)",
                        protocol.as_str()
                    ),
                ));
            }
            return Ok(());
        }
        let password = self.sasl_password()?;
        let (user_field, password_field) = match self.sasl_mechanism {
            SaslMechanism::OauthBearer => ("the OIDC client id", "the OIDC client secret"),
            _ => ("the user name", "the password"),
        };
        if self.sasl_username.trim().is_empty() {
            return Err(invalid(
                "kafka.sasl_username",
                format!(
                    "must be set ({user_field}) with kafka.sasl_mechanism = {}",
                    self.sasl_mechanism.as_str()
                ),
            ));
        }
        if password.is_empty() {
            return Err(invalid(
                "kafka.sasl_password",
                format!(
                    "must be set ({password_field}; or kafka.sasl_password_file) with \
                     kafka.security_protocol = {}",
                    protocol.as_str()
                ),
            ));
        }
        if self.sasl_mechanism == SaslMechanism::OauthBearer {
            let url = &self.sasl_oauthbearer_token_endpoint;
            if !(url.starts_with("https://") || url.starts_with("http://")) {
                return Err(invalid(
                    "kafka.sasl_oauthbearer_token_endpoint",
                    "must be the OIDC token endpoint URL (https://...) with OAUTHBEARER",
                ));
            }
        }
        Ok(())
    }
}

fn check_certs(field: &str, path: &Path) -> Result<Vec<CertificateDer<'static>>, ConfigError> {
    let shown = path.display();
    std::fs::metadata(path).map_err(|e| invalid(field, format!("cannot read {shown}: {e}")))?;
    let certs = CertificateDer::pem_file_iter(path)
        .and_then(|it| it.collect::<Result<Vec<_>, _>>())
        .map_err(|e| invalid(field, format!("{shown} is not a PEM certificate file: {e}")))?;
    if certs.is_empty() {
        return Err(invalid(
            field,
            format!("{shown} holds no PEM certificate (-----BEGIN CERTIFICATE-----)"),
        ));
    }
    Ok(certs)
}

fn check_ca_file(field: &str, path: &Path) -> Result<(), ConfigError> {
    let mut roots = rustls::RootCertStore::empty();
    for cert in check_certs(field, path)? {
        roots.add(cert).map_err(|e| {
            invalid(
                field,
                format!(
                    "{} holds a certificate that cannot be used as a CA: {e}",
                    path.display()
                ),
            )
        })?;
    }
    Ok(())
}

fn check_key(field: &str, path: &Path) -> Result<(), ConfigError> {
    let shown = path.display();
    std::fs::metadata(path).map_err(|e| invalid(field, format!("cannot read {shown}: {e}")))?;
    PrivateKeyDer::from_pem_file(path)
        .map(drop)
        .map_err(|e| invalid(field, format!("{shown} is not a PEM private key file: {e}")))
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::config::SecurityProtocol;

    const KEY: &str = "-----BEGIN PRIVATE KEY-----\nMC4CAQAwBQYDK2VwBCIEIJ+DYvh6SEqVTm50DFtMDoQikTmiCqirVv9mWG9qfSnF\n-----END PRIVATE KEY-----\n";

    fn sasl_ssl() -> KafkaConfig {
        KafkaConfig {
            security_protocol: SecurityProtocol::SaslSsl,
            sasl_mechanism: SaslMechanism::ScramSha512,
            sasl_username: "svc".into(),
            sasl_password: "pw".into(),
            ..Default::default()
        }
    }

    #[test]
    fn every_client_gets_the_security_settings() {
        let c = sasl_ssl().client_config().unwrap();
        assert_eq!(c.get("security.protocol"), Some("sasl_ssl"));
        assert_eq!(c.get("ssl.ca.location"), Some("probe"));
        assert_eq!(c.get("sasl.mechanism"), Some("SCRAM-SHA-512"));
        assert_eq!(c.get("sasl.username"), Some("svc"));
        assert_eq!(c.get("sasl.password"), Some("pw"));
        let plain = KafkaConfig::default().client_config().unwrap();
        assert_eq!(plain.get("security.protocol"), Some("plaintext"));
        assert_eq!(plain.get("sasl.mechanism"), None);
    }

    #[test]
    fn oauthbearer_uses_oidc_client_credentials() {
        let cfg = KafkaConfig {
            sasl_mechanism: SaslMechanism::OauthBearer,
            sasl_oauthbearer_token_endpoint: "https://idp.example/token".into(),
            sasl_oauthbearer_extensions: "logicalCluster=lkc-1".into(),
            ..sasl_ssl()
        };
        cfg.validate().unwrap();
        let c = cfg.client_config().unwrap();
        assert_eq!(c.get("sasl.oauthbearer.method"), Some("oidc"));
        assert_eq!(c.get("sasl.oauthbearer.client.id"), Some("svc"));
        assert_eq!(c.get("sasl.oauthbearer.client.secret"), Some("pw"));
        assert_eq!(
            c.get("sasl.oauthbearer.extensions"),
            Some("logicalCluster=lkc-1")
        );
        assert_eq!(c.get("sasl.username"), None);
        let no_endpoint = KafkaConfig {
            sasl_oauthbearer_token_endpoint: String::new(),
            ..cfg
        };
        assert_eq!(
            no_endpoint.validate().unwrap_err().field,
            "kafka.sasl_oauthbearer_token_endpoint"
        );
    }

    #[test]
    fn password_file_replaces_the_password() {
        let dir = tempfile::tempdir().unwrap();
        let file = dir.path().join("pw");
        std::fs::write(&file, "from-file\n").unwrap();
        let cfg = KafkaConfig {
            sasl_password: String::new(),
            sasl_password_file: Some(file),
            ..sasl_ssl()
        };
        cfg.validate().unwrap();
        assert_eq!(
            cfg.client_config().unwrap().get("sasl.password"),
            Some("from-file")
        );
        let both = KafkaConfig {
            sasl_password: "x".into(),
            ..cfg.clone()
        };
        assert_eq!(
            both.validate().unwrap_err().field,
            "kafka.sasl_password_file"
        );
        let missing = KafkaConfig {
            sasl_password_file: Some(dir.path().join("absent")),
            ..cfg
        };
        let e = missing.validate().unwrap_err();
        assert_eq!(e.field, "kafka.sasl_password_file");
        assert!(e.reason.contains("absent"), "{e}");
    }

    #[test]
    fn settings_that_do_not_fit_the_protocol_are_named() {
        let cases: Vec<(KafkaConfig, &str)> = vec![
            (
                KafkaConfig {
                    ssl_ca_file: Some("/etc/ca.pem".into()),
                    ..Default::default()
                },
                "kafka.ssl_ca_file",
            ),
            (
                KafkaConfig {
                    sasl_username: "u".into(),
                    ..Default::default()
                },
                "kafka.sasl_username",
            ),
            (
                KafkaConfig {
                    sasl_username: String::new(),
                    ..sasl_ssl()
                },
                "kafka.sasl_username",
            ),
            (
                KafkaConfig {
                    sasl_password: String::new(),
                    ..sasl_ssl()
                },
                "kafka.sasl_password",
            ),
            (
                KafkaConfig {
                    security_protocol: SecurityProtocol::Ssl,
                    ssl_ca_file: Some("/nonexistent/ca.pem".into()),
                    ..Default::default()
                },
                "kafka.ssl_ca_file",
            ),
        ];
        for (cfg, field) in cases {
            assert_eq!(cfg.validate().unwrap_err().field, field, "{cfg:?}");
        }
    }

    #[test]
    fn tls_files_must_parse() {
        let dir = tempfile::tempdir().unwrap();
        let garbage = dir.path().join("garbage.pem");
        std::fs::write(&garbage, "hello\n").unwrap();
        let key = dir.path().join("key.pem");
        std::fs::write(&key, KEY).unwrap();
        let ssl = |ca: Option<&Path>, cert: Option<&Path>, key: Option<&Path>| KafkaConfig {
            security_protocol: SecurityProtocol::Ssl,
            ssl_ca_file: ca.map(Into::into),
            ssl_cert_file: cert.map(Into::into),
            ssl_key_file: key.map(Into::into),
            ..Default::default()
        };
        let e = ssl(Some(&garbage), None, None).validate().unwrap_err();
        assert_eq!(e.field, "kafka.ssl_ca_file");
        assert!(e.reason.contains("no PEM certificate"), "{e}");
        let e = ssl(None, Some(&garbage), Some(&key))
            .validate()
            .unwrap_err();
        assert_eq!(e.field, "kafka.ssl_cert_file");
        let e = ssl(None, Some(&key), None).validate().unwrap_err();
        assert_eq!(e.field, "kafka.ssl_key_file");
    }

    #[test]
    fn debug_redacts_the_password_and_names_are_read() {
        let shown = format!("{:?}", sasl_ssl());
        assert!(!shown.contains("\"pw\""), "{shown}");
        assert!(shown.contains("<redacted>"), "{shown}");
        let cfg: KafkaConfig = serde_json::from_str(
            r#"{"security_protocol":"SASL_SSL","sasl_mechanism":"SCRAM-SHA-256"}"#,
        )
        .unwrap();
        assert_eq!(cfg.security_protocol, SecurityProtocol::SaslSsl);
        assert_eq!(cfg.sasl_mechanism, SaslMechanism::ScramSha256);
    }
}
