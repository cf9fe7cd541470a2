//! `hookauth:email-js/http.post-json` over `wasi:http/outgoing-handler`, for the JS hook (see
//! ../wit/world.wit for why JS does not call wasi:http itself). The same blocking POST as
//! guest-examples/rust/welcome-email/src/http.rs. The host lets requests through only to the
//! hosts in the hook's `allowed_hosts`.

wit_bindgen::generate!({ world: "http-shim", path: "../wit" });

use exports::hookauth::email_js::http::Guest;
use wasip2::http::outgoing_handler;
use wasip2::http::types::{Fields, Method, OutgoingBody, OutgoingRequest, Scheme};

struct Shim;

impl Guest for Shim {
    fn post_json(url: String, headers: Vec<(String, String)>, body: String) -> Result<u16, String> {
        let (scheme, rest) = if let Some(rest) = url.strip_prefix("https://") {
            (Scheme::Https, rest)
        } else if let Some(rest) = url.strip_prefix("http://") {
            (Scheme::Http, rest)
        } else {
            return Err(format!("url {url:?} is not http(s)"));
        };
        let (authority, path) = match rest.find('/') {
            Some(i) => (&rest[..i], &rest[i..]),
            None => (rest, "/"),
        };

        let mut entries = vec![("content-type".to_string(), b"application/json".to_vec())];
        for (name, value) in headers {
            entries.push((name, value.into_bytes()));
        }
        let fields = Fields::from_list(&entries).map_err(|e| format!("bad header: {e:?}"))?;
        let request = OutgoingRequest::new(fields);
        request.set_method(&Method::Post).map_err(|()| "bad method")?;
        request.set_scheme(Some(&scheme)).map_err(|()| "bad scheme")?;
        request
            .set_authority(Some(authority))
            .map_err(|()| format!("bad host {authority:?}"))?;
        request
            .set_path_with_query(Some(path))
            .map_err(|()| format!("bad path {path:?}"))?;

        let outgoing = request.body().map_err(|()| "request body already taken")?;
        {
            let stream = outgoing.write().map_err(|()| "body stream already taken")?;
            // blocking_write_and_flush takes at most 4096 bytes per call.
            for chunk in body.as_bytes().chunks(4096) {
                stream
                    .blocking_write_and_flush(chunk)
                    .map_err(|e| format!("writing the body: {e:?}"))?;
            }
        }
        OutgoingBody::finish(outgoing, None).map_err(|e| format!("finishing the body: {e:?}"))?;

        let pending = outgoing_handler::handle(request, None)
            .map_err(|e| format!("POST {url}: {e:?}"))?;
        let response = loop {
            match pending.get() {
                Some(result) => break result,
                None => pending.subscribe().block(),
            }
        };
        let response = response
            .map_err(|()| "response already taken".to_string())?
            .map_err(|e| format!("POST {url}: {e:?}"))?;
        Ok(response.status())
    }
}

export!(Shim);
