//! The SIP listeners (TLS on the pool address, optionally plain TCP) around the registrar core.
//!
//! This file only moves bytes: it frames messages with [`lyncd_sip::Decoder`], looks the sender
//! up in the store, hands each message to [`lyncd_registrar::Registrar`] with the time, writes
//! what the core wants sent, and logs the core's events. Every protocol decision is in the core.
//!
//! Registrations are shared with the other nodes through the store: a binding the core made is
//! written *before* its 200 OK leaves (so an acknowledged registration survives this node), and
//! if the write fails the core turns the answer into 503 + `Retry-After`. De-registrations
//! remove the row wherever it is; expiry and closed connections remove it only while this node
//! still holds it. A node that stops or dies keeps its rows: they expire on time, or move to the
//! node where the client registers next.

use std::collections::HashMap;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex, MutexGuard};
use std::time::Duration;

use bytes::{Bytes, BytesMut};
use lyncd_core::{OsEntropy, SipAddress};
use lyncd_registrar::{
    Account, Binding, ConnId, Event, PeerNetwork, Registrar, RegistrarConfig, Transmit,
};
use lyncd_sip::{Decoder, Frame, Limits, Message};
use lyncd_store::Registration;
use lyncd_tlsdsk::ServerContext;
use tokio::io::{AsyncRead, AsyncReadExt, AsyncWrite, AsyncWriteExt};
use tokio::net::TcpListener;
use tokio::sync::{mpsc, watch};

use crate::App;
use crate::tls::Acceptor;

#[derive(Debug, thiserror::Error)]
pub enum SipStartError {
    #[error("issuing the registrar's TLS-DSK certificate: {0}")]
    Certificate(#[from] lyncd_pki::PkiError),
    #[error("setting up TLS-DSK: {0}")]
    TlsDsk(#[from] lyncd_tlsdsk::TlsDskError),
}

/// The registrar and the connections it can write to.
pub struct SipService {
    app: Arc<App>,
    registrar: Mutex<Registrar>,
    connections: Mutex<HashMap<ConnId, mpsc::UnboundedSender<Bytes>>>,
    next_conn: AtomicU64,
    /// This node's name in the registrations it writes.
    node: String,
}

/// What a core decision means for the shared registrations.
enum BindingWrite {
    Store(Registration),
    /// `held_by`: remove only while that node holds the row.
    Remove {
        address: SipAddress,
        epid: String,
        held_by: Option<String>,
    },
}

/// What one turn of the core produced, taken out under the lock and acted on without it.
struct Output {
    transmits: Vec<Transmit>,
    events: Vec<Event>,
    writes: Vec<BindingWrite>,
}

impl SipService {
    /// Issues the pool's RSA certificate for the tunnelled handshake (TLS-DSK needs RSA key
    /// transport, sip.md §5.8) and trusts user certificates from lyncd's CA.
    pub fn new(app: Arc<App>) -> Result<Arc<SipService>, SipStartError> {
        let pool = app.config.names.pool.clone();
        let keys = app.keys();
        let identity = keys
            .ca
            .issue_signing_cert(&pool, app.now(), time::Duration::days(365))?;
        let tls = ServerContext::new(
            &identity.chain_pem,
            identity.key_pem.expose(),
            keys.ca.cert_pem(),
        )?;
        let mut config = RegistrarConfig::new(pool, app.certprov.clone());
        config.registration_expires = app.config.sip.registration_secs;
        config.max_registration_expires = app.config.sip.registration_secs;
        config.keepalive_timeout = app.config.sip.keepalive_secs;
        Ok(Arc::new(SipService {
            node: app.config.node_name(),
            app,
            registrar: Mutex::new(Registrar::new(config, tls)),
            connections: Mutex::new(HashMap::new()),
            next_conn: AtomicU64::new(1),
        }))
    }

    fn registrar(&self) -> MutexGuard<'_, Registrar> {
        // A panic while holding the lock cannot leave the registrar half-updated in a way
        // that matters more than refusing all further sign-ins would.
        self.registrar.lock().unwrap_or_else(|p| p.into_inner())
    }

    fn connections(&self) -> MutexGuard<'_, HashMap<ConnId, mpsc::UnboundedSender<Bytes>>> {
        self.connections.lock().unwrap_or_else(|p| p.into_inner())
    }

    /// Takes what the core queued, and the registration writes its events call for.
    fn drain(&self, registrar: &mut Registrar) -> Output {
        let transmits = std::iter::from_fn(|| registrar.poll_transmit()).collect();
        let events: Vec<Event> = std::iter::from_fn(|| registrar.poll_event()).collect();
        let writes = events
            .iter()
            .filter_map(|e| self.binding_write(registrar, e))
            .collect();
        Output {
            transmits,
            events,
            writes,
        }
    }

    fn binding_write(&self, registrar: &Registrar, event: &Event) -> Option<BindingWrite> {
        match event {
            Event::Registered { aor, epid, .. } => {
                let b = registrar.bindings(aor).iter().find(|b| &b.epid == epid)?;
                Some(BindingWrite::Store(self.registration(b)?))
            }
            Event::Unregistered { aor, epid, .. } => Some(BindingWrite::Remove {
                address: SipAddress::parse(aor).ok()?,
                epid: epid.clone(),
                held_by: None,
            }),
            Event::BindingExpired { aor, epid } => Some(BindingWrite::Remove {
                address: SipAddress::parse(aor).ok()?,
                epid: epid.clone(),
                held_by: Some(self.node.clone()),
            }),
            _ => None,
        }
    }

    fn registration(&self, b: &Binding) -> Option<Registration> {
        let now = self.app.now();
        Some(Registration {
            address: SipAddress::parse(&b.aor).ok()?,
            epid: b.epid.clone(),
            instance: b.instance.clone(),
            contact: b.contact.clone(),
            gruu: b.gruu.clone(),
            node: self.node.clone(),
            registered_at: now,
            expires_at: b.expires,
        })
    }

    /// Writes the registrations, then sends and logs. `request` is the message this output
    /// answers: when storing its registration fails, the core's 200 OK is withheld and the
    /// core answers 503 instead.
    async fn finish(&self, conn: ConnId, request: Option<&Message>, mut out: Output) {
        for write in std::mem::take(&mut out.writes) {
            let Err(e) = self.write(&write).await else {
                continue;
            };
            match (write, request) {
                (BindingWrite::Store(r), Some(msg)) => {
                    tracing::error!(
                        user = %r.address,
                        epid = %r.epid,
                        error = %e,
                        "sip: registration not stored; answering 503 instead of 200"
                    );
                    // Neither the 200 OK nor its "registered" line: the refusal replaces both.
                    out.transmits.retain(|t| t.conn != conn);
                    out.events
                        .retain(|e| !matches!(e, Event::Registered { conn: c, .. } if *c == conn));
                    let mut registrar = self.registrar();
                    registrar.registration_not_stored(self.app.now(), conn, msg, &mut OsEntropy);
                    let refusal = self.drain(&mut registrar);
                    out.transmits.extend(refusal.transmits);
                    out.events.extend(refusal.events);
                }
                (BindingWrite::Store(r), None) => {
                    tracing::error!(user = %r.address, epid = %r.epid, error = %e, "sip: registration not stored")
                }
                (BindingWrite::Remove { address, epid, .. }, _) => tracing::error!(
                    user = %address,
                    %epid,
                    error = %e,
                    "sip: could not remove the registration from the database; it stays visible until it expires"
                ),
            }
        }
        for t in out.transmits {
            if let Some(tx) = self.connections().get(&t.conn) {
                let _ = tx.send(Bytes::copy_from_slice(t.message.as_bytes()));
            }
        }
        for event in &out.events {
            log_event(event);
        }
    }

    async fn write(&self, write: &BindingWrite) -> Result<(), lyncd_store::StoreError> {
        match write {
            BindingWrite::Store(r) => self.app.store.upsert_registration(r).await,
            BindingWrite::Remove {
                address,
                epid,
                held_by,
            } => self
                .app
                .store
                .remove_registration(address, epid, held_by.as_deref())
                .await
                .map(|_| ()),
        }
    }

    async fn account(&self, msg: &Message) -> Account {
        if !msg
            .method()
            .is_some_and(|m| m.eq_ignore_ascii_case("REGISTER"))
        {
            return Account::Unknown;
        }
        let Ok(address) = lyncd_registrar::sender(msg) else {
            return Account::Unknown;
        };
        match self.app.store.user(&address).await {
            Ok(Some(u)) => Account::from_flags(u.enabled, u.sip_enabled, u.remote_access),
            Ok(None) => Account::Unknown,
            Err(e) => {
                tracing::error!(user = %address, error = %e, "sip: user lookup failed; answering 503");
                Account::Unavailable
            }
        }
    }

    async fn dispatch(&self, conn: ConnId, msg: Message) {
        if let Some(refusal) = crate::faults::pool_unavailable(&self.app, &msg) {
            tracing::info!(
                conn,
                "sip: REGISTER refused with 503 (faults.pool_unavailable)"
            );
            if let Some(tx) = self.connections().get(&conn) {
                let _ = tx.send(Bytes::copy_from_slice(refusal.as_bytes()));
            }
            return;
        }
        let account = self.account(&msg).await;
        let now = self.app.now();
        let out = {
            let mut registrar = self.registrar();
            registrar.handle(now, conn, &msg, account, &mut OsEntropy);
            self.drain(&mut registrar)
        };
        self.finish(conn, Some(&msg), out).await;
    }

    /// Expires handshakes, security associations and bindings on time.
    pub async fn timers(self: Arc<Self>, mut stop: watch::Receiver<bool>) {
        loop {
            tokio::select! {
                _ = tokio::time::sleep(Duration::from_secs(1)) => {}
                _ = stop.changed() => return,
            }
            let now = self.app.now();
            let out = {
                let mut registrar = self.registrar();
                if registrar.poll_timeout().is_none_or(|t| t > now) {
                    continue;
                }
                registrar.handle_timeout(now);
                self.drain(&mut registrar)
            };
            self.finish(0, None, out).await;
        }
    }

    /// Reclaims the rows of registrations that expired anywhere in the cluster (also those of
    /// nodes that died). Every node runs it; it is idempotent.
    pub async fn purge_expired(self: Arc<Self>, mut stop: watch::Receiver<bool>) {
        loop {
            tokio::select! {
                _ = tokio::time::sleep(Duration::from_secs(60)) => {}
                _ = stop.changed() => return,
            }
            match self
                .app
                .store
                .purge_expired_registrations(self.app.now())
                .await
            {
                Ok(0) => {}
                Ok(n) => tracing::debug!(count = n, "sip: expired registrations purged"),
                Err(e) => tracing::warn!(error = %e, "sip: could not purge expired registrations"),
            }
        }
    }

    /// Accepts connections until `stop`; `tls` is `None` for the plain-TCP listener.
    pub async fn serve(
        self: Arc<Self>,
        listener: TcpListener,
        tls: Option<Acceptor>,
        mut stop: watch::Receiver<bool>,
    ) {
        loop {
            let (tcp, peer) = tokio::select! {
                r = listener.accept() => match r {
                    Ok(c) => c,
                    Err(e) => { tracing::warn!(error = %e, "sip: accept failed"); continue; }
                },
                _ = stop.changed() => return,
            };
            let svc = self.clone();
            let stop = stop.clone();
            let tls = tls.clone();
            tokio::spawn(async move {
                match tls {
                    Some(acceptor) => match acceptor.accept(tcp).await {
                        Ok(stream) => svc.connection(stream, peer, stop).await,
                        Err(e) => tracing::info!(%peer, error = %e, "sip: TLS handshake failed"),
                    },
                    None => svc.connection(tcp, peer, stop).await,
                }
            });
        }
    }

    async fn connection<S>(
        self: Arc<Self>,
        io: S,
        peer: std::net::SocketAddr,
        mut stop: watch::Receiver<bool>,
    ) where
        S: AsyncRead + AsyncWrite + Send + 'static,
    {
        let conn = self.next_conn.fetch_add(1, Ordering::Relaxed);
        // Remote-access policy is the registrar's decision; it only needs to know where the
        // connection comes from ([sip] internal_networks).
        let network = if self.app.config.sip.is_internal(peer.ip()) {
            PeerNetwork::Internal
        } else {
            PeerNetwork::External
        };
        self.registrar().connection_opened(conn, network);
        let (tx, mut rx) = mpsc::unbounded_channel::<Bytes>();
        self.connections().insert(conn, tx.clone());
        let (mut reader, mut writer) = tokio::io::split(io);
        let writing = tokio::spawn(async move {
            while let Some(bytes) = rx.recv().await {
                if writer.write_all(&bytes).await.is_err() {
                    return;
                }
            }
            let _ = writer.shutdown().await;
        });
        tracing::debug!(%peer, conn, "sip: connection opened");

        // Clients send CRLFCRLF after `keepalive` seconds of silence; allow twice that.
        let idle = Duration::from_secs(u64::from(self.app.config.sip.keepalive_secs) * 2);
        let mut decoder = Decoder::new(Limits::default());
        let mut buf = BytesMut::with_capacity(8 * 1024);
        let mut stopping = false;
        let why = 'conn: loop {
            loop {
                match decoder.decode(&mut buf) {
                    Ok(Some(Frame::KeepAlive)) => {}
                    Ok(Some(Frame::Message(msg))) => self.dispatch(conn, msg).await,
                    Ok(None) => break,
                    Err(e) => {
                        // Framing is lost: answer what we can and close.
                        let (code, phrase) = e.status();
                        let text = e.to_string().replace('"', "'");
                        let reply = format!(
                            "SIP/2.0 {code} {phrase}\r\nWarning: 399 {} \"{text}\"\r\nContent-Length: 0\r\n\r\n",
                            self.app.config.names.pool
                        );
                        let _ = tx.send(Bytes::from(reply));
                        break 'conn format!("unreadable SIP: {e}");
                    }
                }
            }
            let read = tokio::select! {
                r = tokio::time::timeout(idle, reader.read_buf(&mut buf)) => r,
                _ = stop.changed() => {
                    stopping = true;
                    break 'conn "server stopping".to_string();
                }
            };
            match read {
                Err(_) => break format!("idle for {} s", idle.as_secs()),
                Ok(Err(e)) => break format!("read error: {e}"),
                Ok(Ok(0)) => break "closed by the client".to_string(),
                Ok(Ok(_)) => {}
            }
        };
        tracing::info!(%peer, conn, reason = %why, "sip: connection ended");
        self.connections().remove(&conn);
        let (dropped, mut out) = {
            let mut registrar = self.registrar();
            let dropped = registrar.connection_closed(conn);
            (dropped, self.drain(&mut registrar))
        };
        // A client that went away is signed out everywhere; when this node stops, its clients
        // stay registered until they register again at another node or their time runs out.
        if !stopping {
            out.writes.extend(dropped.into_iter().filter_map(|b| {
                Some(BindingWrite::Remove {
                    address: SipAddress::parse(&b.aor).ok()?,
                    epid: b.epid,
                    held_by: Some(self.node.clone()),
                })
            }));
        }
        self.finish(conn, None, out).await;
        drop(tx);
        let _ = writing.await;
    }
}

fn log_event(event: &Event) {
    match event {
        Event::Challenged { conn, aor } => {
            tracing::info!(conn, user = %aor, "sip: REGISTER challenged (TLS-DSK)")
        }
        Event::HandshakeStarted { conn, aor, opaque } => {
            tracing::debug!(conn, user = %aor, opaque, "sip: TLS-DSK handshake started")
        }
        Event::HandshakeCompleted {
            conn,
            aor,
            certificate_serial,
            protocol,
            cipher,
            ..
        } => tracing::info!(
            conn,
            user = %aor,
            certificate = %certificate_serial,
            protocol,
            cipher = %cipher,
            "sip: TLS-DSK handshake completed"
        ),
        Event::Registered {
            conn,
            aor,
            epid,
            expires,
            refreshed,
        } => tracing::info!(
            conn,
            user = %aor,
            epid = %epid,
            expires,
            refreshed,
            "sip: registered"
        ),
        Event::Unregistered { conn, aor, epid } => {
            tracing::info!(conn, user = %aor, epid = %epid, "sip: signed out")
        }
        Event::BindingExpired { aor, epid } => {
            tracing::info!(user = %aor, epid = %epid, "sip: registration expired")
        }
        Event::SaExpired { aor, opaque } => {
            tracing::info!(user = %aor, opaque, "sip: security association expired")
        }
        Event::Answered {
            conn,
            aor,
            method,
            event,
            status,
        } => tracing::debug!(conn, user = %aor, method, event = ?event, status, "sip: answered"),
        Event::Refused {
            conn,
            aor,
            method,
            reason,
        } => tracing::info!(
            conn,
            user = ?aor,
            method,
            code = reason.diagnostic_code(),
            reason = %reason,
            "sip: request refused"
        ),
    }
}
