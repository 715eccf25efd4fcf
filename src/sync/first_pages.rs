//! The first page of each fresh full refresh, asked for together with the sync's first
//! request (`/v1/account`: it checks the key and gives the server's clock, which every
//! other read waits for) rather than after it. That page's request does not depend on
//! the clock (from `start_date`, no upper bound), so the sync does not spend the
//! account's round trip before its first pages.
//!
//! A first page is taken only by the read that asks for exactly that request (the same
//! stream, the same query); one nobody asks for is dropped, and one that failed is asked
//! for again, so its error is the read's own.

use std::collections::HashMap;
use std::sync::Mutex;

use tokio::sync::oneshot;

use crate::streams::StreamDef;
use crate::stripe::{self, Client, Page};

type Query = Vec<(&'static str, String)>;
/// A page's query, and where its answer arrives.
type Asked = (Query, oneshot::Receiver<Result<Page, stripe::Error>>);

/// First pages on their way, by stream.
#[derive(Default)]
pub(super) struct FirstPages {
    pages: Mutex<HashMap<&'static str, Asked>>,
}

impl FirstPages {
    /// Asks for `def`'s page `query` now, to be taken by [`FirstPages::take`].
    pub(super) fn start(&self, client: Client, def: &'static StreamDef, query: Query) {
        let (send, receive) = oneshot::channel();
        let asked = query.clone();
        tokio::spawn(async move {
            // The receiver may be gone (the read ended first): nothing to do then.
            send.send(client.list(def.path, &asked).await).ok();
        });
        self.lock().insert(def.name, (query, receive));
    }

    /// `def`'s page `query`, if it was asked for already and arrived.
    pub(super) async fn take(
        &self,
        def: &'static StreamDef,
        query: &[(&str, String)],
    ) -> Option<Page> {
        let receive = {
            let mut pages = self.lock();
            match pages.get(def.name) {
                Some((asked, _)) if asked.as_slice() == query => pages.remove(def.name)?.1,
                _ => return None,
            }
        };
        receive.await.ok()?.ok()
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, HashMap<&'static str, Asked>> {
        self.pages.lock().unwrap_or_else(|p| p.into_inner())
    }
}
