//! `headers`: custom request and response headers.

use pingora::http::{RequestHeader, ResponseHeader};
use pingora::Result;
use traverse_model::Headers;

use super::{PathRewrite, Step};

impl Step for Headers {
    fn upstream_request(&self, request: &mut RequestHeader, _path: &mut PathRewrite) -> Result<()> {
        for (name, value) in &self.request {
            match value {
                Some(value) => request.insert_header(name.clone(), value.clone())?,
                None => {
                    request.remove_header(name);
                }
            }
        }
        Ok(())
    }

    fn response(&self, response: &mut ResponseHeader) -> Result<()> {
        for (name, value) in &self.response {
            match value {
                Some(value) => response.insert_header(name.clone(), value.clone())?,
                None => {
                    response.remove_header(name);
                }
            }
        }
        Ok(())
    }
}
