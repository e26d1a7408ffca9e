//! `--app reference`: the reference app (`cable-refapp` (the Rust twin of
//! `../shared/refserver/config.ru`) behind the [`CableApp`] trait.

use std::time::Instant;

use cable_proto::server::{Config, ConnectionAccept, Event, Server};
use cable_refapp::ReferenceApp;

use crate::app::{CableApp, ControlRequest, HttpResponse, RequestInfo, SyncApp};

/// The reference app as a [`CableApp`].
pub(crate) fn app() -> Box<dyn CableApp> {
    Box::new(Reference(ReferenceApp::new()))
}

struct Reference(ReferenceApp);

impl SyncApp for Reference {
    fn name(&self) -> &str {
        "reference"
    }

    fn configure(&self, config: &mut Config) {
        config.origins = ReferenceApp::config().origins;
    }

    /// Its state per subscription moves on [`Event::SessionRestored`].
    fn resumable(&self) -> bool {
        true
    }

    fn authenticate(&mut self, request: &RequestInfo) -> Option<ConnectionAccept> {
        self.0
            .authenticate(&request.path_and_query, request.authorization())
            .map(Into::into)
    }

    fn handle_event(&mut self, server: &mut Server, event: Event, now: Instant) {
        self.0.handle_event(server, event, now);
    }

    fn control(
        &mut self,
        server: &mut Server,
        request: &ControlRequest<'_>,
        now: Instant,
    ) -> Option<HttpResponse> {
        // config.ru maps these paths for any method; the recorder uses GET.
        let (status, body) = self.0.control(server, request.path_and_query, now)?;
        Some(HttpResponse::json(status, body))
    }
}
