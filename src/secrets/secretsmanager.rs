//! [`SecretSource`] over AWS Secrets Manager `GetSecretValue`.

use aws_sdk_secretsmanager::Client;
use aws_sdk_secretsmanager::operation::get_secret_value::GetSecretValueError;

use super::{SecretError, SecretSource};

pub struct SecretsManagerSource {
    client: Client,
    secret_id: String,
}

impl SecretsManagerSource {
    pub fn new(client: Client, secret_id: impl Into<String>) -> SecretsManagerSource {
        SecretsManagerSource { client, secret_id: secret_id.into() }
    }
}

impl SecretSource for SecretsManagerSource {
    async fn secret_string(&self) -> Result<String, SecretError> {
        let secret_id = self.secret_id.clone();
        let out = self.client.get_secret_value().secret_id(&self.secret_id).send().await.map_err(
            |e| {
                let service = e.as_service_error();
                if matches!(service, Some(GetSecretValueError::ResourceNotFoundException(_))) {
                    return SecretError::NotFound { secret_id: secret_id.clone() };
                }
                let code =
                    service.and_then(aws_sdk_secretsmanager::error::ProvideErrorMetadata::code);
                if matches!(code, Some("AccessDeniedException") | Some("AccessDenied"))
                    || matches!(service, Some(GetSecretValueError::DecryptionFailure(_)))
                {
                    return SecretError::AccessDenied {
                        secret_id: secret_id.clone(),
                        source: Box::new(e),
                    };
                }
                SecretError::Unavailable { secret_id: secret_id.clone(), source: Box::new(e) }
            },
        )?;
        out.secret_string.ok_or(SecretError::NoString)
    }
}
