//! The registrar state machine: challenge → handshake → signed traffic, per sip.md §0–§10.

use std::collections::{HashMap, VecDeque};

use base64::Engine as _;
use base64::engine::general_purpose::STANDARD as B64;
use lyncd_core::{Entropy, SipAddress, UtcTime};
use lyncd_diag::msdiag;
use lyncd_sip::auth::{AuthHeader, AuthParams};
use lyncd_sip::sign::{self, SigParams};
use lyncd_sip::{FieldError, Message, MessageBuilder, epid_to_instance, response_to};
use lyncd_tlsdsk::{AwaitingClientFinish, ReplayWindow, ServerContext, SigningKeys};
use time::macros::format_description;

use crate::bodies;
use crate::config::RegistrarConfig;
use crate::events::{Event, Refusal};

/// Identifies one client connection in the shell.
pub type ConnId = u64;

/// The sender's account as the shell found it in the store.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Account {
    /// May sign in from any network.
    Enabled,
    /// Enabled for SIP, but without remote access: may sign in only over connections the shell
    /// announced as [`PeerNetwork::Internal`].
    InternalOnly,
    /// Exists and is enabled, but not for SIP.
    NotSipEnabled,
    /// Disabled: may not sign in at all.
    Disabled,
    Unknown,
    /// The shell could not look the user up (its database is unavailable): refused with 503
    /// and `Retry-After`, not as an unknown user.
    Unavailable,
}

impl Account {
    /// The account of a stored user from its three switches; `enabled` wins over the others,
    /// and `sip_enabled` over `remote_access`.
    pub fn from_flags(enabled: bool, sip_enabled: bool, remote_access: bool) -> Account {
        match (enabled, sip_enabled, remote_access) {
            (false, _, _) => Account::Disabled,
            (true, false, _) => Account::NotSipEnabled,
            (true, true, false) => Account::InternalOnly,
            (true, true, true) => Account::Enabled,
        }
    }
}

/// Where a connection comes from, as far as remote-access policy is concerned.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum PeerNetwork {
    /// One of the operator's internal networks.
    Internal,
    /// Anywhere else: users without remote access are refused (403, `ms-diagnostics-public:
    /// 4003`).
    External,
}

/// A message to write to a connection.
#[derive(Debug)]
pub struct Transmit {
    pub conn: ConnId,
    pub message: Message,
}

/// One registered endpoint of a user.
#[derive(Debug, Clone)]
pub struct Binding {
    /// `user@domain`, lower-case.
    pub aor: String,
    pub epid: String,
    pub instance: Option<String>,
    /// The Contact header value as the client sent it (echoed unchanged, sip.md §2.1).
    pub contact: String,
    pub gruu: String,
    pub conn: ConnId,
    pub expires: UtcTime,
    pub opaque: String,
}

/// Most handshakes one connection may have half-done at once; older ones are dropped.
const MAX_PENDING_PER_CONN: usize = 4;

/// A handshake that sent S1 and waits for C2.
struct PendingHandshake {
    engine: AwaitingClientFinish,
    conn: ConnId,
    aor: String,
    deadline: UtcTime,
    started: UtcTime,
}

/// Keys and counters of one completed TLS-DSK handshake (sip.md §5.4).
struct SecurityAssociation {
    conn: ConnId,
    aor: String,
    keys: SigningKeys,
    replay: ReplayWindow,
    snum: u64,
    expires: UtcTime,
}

/// The parameters of a verified signed request.
struct Verified {
    opaque: String,
}

pub struct Registrar {
    config: RegistrarConfig,
    tls: ServerContext,
    pending: HashMap<String, PendingHandshake>,
    sas: HashMap<String, SecurityAssociation>,
    bindings: HashMap<String, Vec<Binding>>,
    /// What the shell said about each open connection's network (see
    /// [`Registrar::connection_opened`]).
    networks: HashMap<ConnId, PeerNetwork>,
    transmits: VecDeque<Transmit>,
    events: VecDeque<Event>,
}

/// The address in `From`, which is the user a REGISTER or a client request speaks for.
pub fn sender(msg: &Message) -> Result<SipAddress, FieldError> {
    let from = msg.from_addr()?;
    SipAddress::parse(from.uri_user_host()).map_err(|_| FieldError::Invalid("From"))
}

fn hex_upper(bytes: &[u8]) -> String {
    bytes.iter().map(|b| format!("{b:02X}")).collect()
}

fn random_hex(entropy: &mut dyn Entropy, bytes: usize) -> String {
    let mut buf = vec![0u8; bytes];
    entropy.fill(&mut buf);
    hex_upper(&buf)
}

/// `Tue, 25 Nov 2025 10:15:02 GMT`: the spec examples carry `Date` so clock skew can be seen.
fn http_date(now: UtcTime) -> String {
    let fmt = format_description!(
        "[weekday repr:short], [day] [month repr:short] [year] [hour]:[minute]:[second] GMT"
    );
    now.to_offset(time::UtcOffset::UTC)
        .format(&fmt)
        .unwrap_or_default()
}

/// Every response the registrar sends starts here: with `Date`, as Lync's do, because clients
/// (and lyncd's troubleshooter) read the clock skew that breaks authentication from it.
fn dated_response(
    now: UtcTime,
    msg: &Message,
    code: u16,
    phrase: &str,
    tag: &str,
) -> MessageBuilder {
    response_to(msg, code, phrase, Some(tag)).header("Date", &http_date(now))
}

/// Longest `epid` accepted ([MS-SIPREGE] ABNF `epid-param-value`: 1–16 characters).
const MAX_EPID_LEN: usize = 16;

/// The `epid` of `From`, which names the endpoint a registration binds (sip.md §2.1).
fn endpoint_epid(msg: &Message) -> Result<String, Refusal> {
    let epid = msg
        .from_addr()
        .ok()
        .and_then(|f| f.epid().map(str::to_string))
        .filter(|e| !e.is_empty())
        .ok_or(Refusal::EpidMissing)?;
    if epid.len() > MAX_EPID_LEN {
        return Err(Refusal::EpidTooLong(epid));
    }
    Ok(epid)
}

/// Text safe inside a quoted header parameter: no quotes, no line breaks.
fn quotable(text: &str) -> String {
    text.chars()
        .map(|c| match c {
            '"' => '\'',
            '\r' | '\n' => ' ',
            c => c,
        })
        .collect()
}

/// The first Handshake record of a ClientHello: `16 03 0x len len 01 …`.
fn is_client_hello(data: &[u8]) -> bool {
    data.len() > 5 && data[0] == 0x16 && data[1] == 0x03 && data[5] == 0x01
}

/// The host part of a Request-URI such as `sip:contoso.com` or `sip:contoso.com;transport=tls`.
fn request_domain(uri: &str) -> &str {
    let rest = uri
        .get(..4)
        .filter(|s| s.eq_ignore_ascii_case("sip:"))
        .map(|_| &uri[4..])
        .unwrap_or(uri);
    let rest = rest.rsplit_once('@').map(|(_, h)| h).unwrap_or(rest);
    let end = rest.find([';', ':', '?', '>']).unwrap_or(rest.len());
    &rest[..end]
}

/// `<urn:uuid:5ccdb10d-…>` → `5ccdb10d-…`.
fn instance_uuid(value: &str) -> &str {
    let v = value.trim_matches(|c| c == '<' || c == '>');
    v.get(..9)
        .filter(|p| p.eq_ignore_ascii_case("urn:uuid:"))
        .map(|_| &v[9..])
        .unwrap_or(v)
}

impl Registrar {
    pub fn new(config: RegistrarConfig, tls: ServerContext) -> Self {
        Registrar {
            config,
            tls,
            pending: HashMap::new(),
            sas: HashMap::new(),
            bindings: HashMap::new(),
            networks: HashMap::new(),
            transmits: VecDeque::new(),
            events: VecDeque::new(),
        }
    }

    pub fn config(&self) -> &RegistrarConfig {
        &self.config
    }

    /// Current bindings of `aor` (`user@domain`, any case).
    pub fn bindings(&self, aor: &str) -> &[Binding] {
        self.bindings
            .get(&aor.to_lowercase())
            .map(Vec::as_slice)
            .unwrap_or(&[])
    }

    /// Number of live security associations (for status and tests).
    pub fn security_associations(&self) -> usize {
        self.sas.len()
    }

    pub fn poll_transmit(&mut self) -> Option<Transmit> {
        self.transmits.pop_front()
    }

    pub fn poll_event(&mut self) -> Option<Event> {
        self.events.pop_front()
    }

    /// The next instant at which [`Registrar::handle_timeout`] has work.
    pub fn poll_timeout(&self) -> Option<UtcTime> {
        let pending = self.pending.values().map(|p| p.deadline);
        let sas = self.sas.values().map(|s| s.expires);
        let bindings = self.bindings.values().flatten().map(|b| b.expires);
        pending.chain(sas).chain(bindings).min()
    }

    /// Drops half-done handshakes, expired security associations and bindings.
    pub fn handle_timeout(&mut self, now: UtcTime) {
        self.pending.retain(|_, p| p.deadline > now);
        let expired: Vec<String> = self
            .sas
            .iter()
            .filter(|(_, sa)| sa.expires <= now)
            .map(|(k, _)| k.clone())
            .collect();
        for opaque in expired {
            if let Some(sa) = self.sas.remove(&opaque) {
                self.events.push_back(Event::SaExpired {
                    aor: sa.aor,
                    opaque,
                });
            }
        }
        for list in self.bindings.values_mut() {
            list.retain(|b| {
                let live = b.expires > now;
                if !live {
                    self.events.push_back(Event::BindingExpired {
                        aor: b.aor.clone(),
                        epid: b.epid.clone(),
                    });
                }
                live
            });
        }
        self.bindings.retain(|_, l| !l.is_empty());
    }

    /// A connection opened from `network`. Remote-access policy needs it: a connection never
    /// announced counts as [`PeerNetwork::External`], so a shell that forgets fails closed
    /// for users without remote access and changes nothing for the others.
    pub fn connection_opened(&mut self, conn: ConnId, network: PeerNetwork) {
        self.networks.insert(conn, network);
    }

    fn network(&self, conn: ConnId) -> PeerNetwork {
        self.networks
            .get(&conn)
            .copied()
            .unwrap_or(PeerNetwork::External)
    }

    /// A connection ended: its handshakes, security associations and bindings go with it
    /// (sip.md §5.4: an SA is gone on connection loss; the client registers again). Returns
    /// the bindings dropped, for a shell that keeps them elsewhere too.
    pub fn connection_closed(&mut self, conn: ConnId) -> Vec<Binding> {
        self.networks.remove(&conn);
        self.pending.retain(|_, p| p.conn != conn);
        self.sas.retain(|_, sa| sa.conn != conn);
        let mut dropped = Vec::new();
        for list in self.bindings.values_mut() {
            let (gone, kept): (Vec<Binding>, Vec<Binding>) =
                list.drain(..).partition(|b| b.conn == conn);
            *list = kept;
            dropped.extend(gone);
        }
        self.bindings.retain(|_, l| !l.is_empty());
        dropped
    }

    /// The shell could not make durable the registration `msg` (a REGISTER this core just
    /// answered 200 OK, which the shell must not send) created or refreshed: the binding is
    /// forgotten and the client gets 503 with `Retry-After` and `ms-diagnostics: 64010`
    /// instead, so no registration is acknowledged that the shell did not store.
    pub fn registration_not_stored(
        &mut self,
        now: UtcTime,
        conn: ConnId,
        msg: &Message,
        entropy: &mut dyn Entropy,
    ) {
        let aor = sender(msg).ok().map(|a| a.key());
        if let (Some(aor), Ok(epid)) = (&aor, endpoint_epid(msg))
            && let Some(list) = self.bindings.get_mut(aor)
        {
            list.retain(|b| !(b.epid == epid && b.conn == conn));
            self.bindings.retain(|_, l| !l.is_empty());
        }
        self.refuse(now, conn, msg, aor, Refusal::DatabaseUnavailable, entropy);
    }

    /// Handles one message from `conn`. `account` is the store's view of the user in `From`
    /// (see [`sender`]).
    pub fn handle(
        &mut self,
        now: UtcTime,
        conn: ConnId,
        msg: &Message,
        account: Account,
        entropy: &mut dyn Entropy,
    ) {
        let Some(method) = msg.method() else {
            // Responses from a client answer requests we never send yet; nothing waits for them.
            return;
        };
        if method.eq_ignore_ascii_case("ACK") {
            return;
        }
        if let Err(e) = msg.call_id().and(msg.cseq().map(|_| ())) {
            self.refuse(now, conn, msg, None, Refusal::Malformed(e), entropy);
            return;
        }
        let from = match sender(msg) {
            Ok(a) => a,
            Err(e) => {
                self.refuse(now, conn, msg, None, Refusal::Malformed(e), entropy);
                return;
            }
        };
        if msg.to_addr().is_err() {
            self.refuse(
                now,
                conn,
                msg,
                Some(from.key()),
                Refusal::Malformed(FieldError::Invalid("To")),
                entropy,
            );
            return;
        }
        if method.eq_ignore_ascii_case("REGISTER") {
            self.register(now, conn, msg, &from, account, entropy);
        } else {
            self.request(now, conn, msg, &from, entropy);
        }
    }

    // ---- REGISTER --------------------------------------------------------------------------

    fn register(
        &mut self,
        now: UtcTime,
        conn: ConnId,
        msg: &Message,
        from: &SipAddress,
        account: Account,
        entropy: &mut dyn Entropy,
    ) {
        let aor = from.key();
        if let Some(uri) = msg.request_uri() {
            let domain = request_domain(uri);
            if !domain.eq_ignore_ascii_case(from.domain()) {
                let reason = Refusal::DomainMismatch {
                    request_domain: domain.to_string(),
                    from: aor.clone(),
                };
                self.refuse(now, conn, msg, Some(aor), reason, entropy);
                return;
            }
        }
        let headers: Vec<AuthHeader<'_>> = msg
            .header_all("Authorization")
            .filter_map(|v| AuthHeader::parse(v).ok())
            .collect();
        let Some(auth) = headers.iter().find(|a| a.is_scheme("TLS-DSK")) else {
            if let Some(other) = headers.first() {
                let reason = Refusal::SchemeNotOffered {
                    scheme: other.scheme.to_string(),
                };
                self.refuse(now, conn, msg, Some(aor), reason, entropy);
            } else {
                self.challenge(now, conn, msg, aor, entropy);
            }
            return;
        };
        if !self.is_our_target(auth) {
            self.refuse(now, conn, msg, Some(aor), Refusal::WrongTarget, entropy);
            return;
        }
        if let Some(data) = auth.get("gssapi-data") {
            let Ok(bytes) = B64.decode(data.as_bytes()) else {
                self.refuse(now, conn, msg, Some(aor), Refusal::BadGssapiData, entropy);
                return;
            };
            let pending = auth
                .get("opaque")
                .filter(|o| self.pending.contains_key(*o))
                .map(str::to_string);
            match pending {
                // A ClientHello always starts over, even when the client repeats an old
                // opaque (SIPE keeps what an earlier 401 carried).
                Some(opaque) if !is_client_hello(&bytes) => {
                    self.finish_handshake(now, conn, msg, from, account, &opaque, &bytes, entropy)
                }
                _ if is_client_hello(&bytes) => {
                    self.start_handshake(now, conn, msg, aor, &bytes, entropy)
                }
                _ => {
                    // A second leg for a handshake we do not have (expired, or we restarted):
                    // challenge afresh so the client starts over.
                    self.challenge(now, conn, msg, aor, entropy);
                }
            }
            return;
        }
        match self.verify(now, conn, msg, &aor, auth) {
            Ok(v) => self.signed_register(now, conn, msg, from, account, v, entropy),
            Err(Rejected::Rechallenge) => self.challenge(now, conn, msg, aor, entropy),
            Err(Rejected::Refused(reason)) => {
                self.refuse(now, conn, msg, Some(aor), reason, entropy)
            }
        }
    }

    fn is_our_target(&self, auth: &AuthHeader<'_>) -> bool {
        let realm_ok = auth.get("realm").is_none_or(|r| r == self.config.realm);
        let target_ok = auth
            .get("targetname")
            .is_none_or(|t| t.eq_ignore_ascii_case(&self.config.targetname));
        realm_ok && target_ok
    }

    /// 401 with the TLS-DSK offer (sip.md §3.1): one scheme per line, quoted values.
    fn challenge(
        &mut self,
        now: UtcTime,
        conn: ConnId,
        msg: &Message,
        aor: String,
        entropy: &mut dyn Entropy,
    ) {
        let offer = AuthParams::new("TLS-DSK")
            .quoted("realm", &self.config.realm)
            .quoted("targetname", &self.config.targetname)
            .token("version", "4")
            .quoted("sts-uri", &self.config.sts_uri)
            .render();
        let tag = random_hex(entropy, 5);
        let response = dated_response(now, msg, 401, "Unauthorized", &tag)
            .header("WWW-Authenticate", &offer)
            .header("Server", &self.config.server_header)
            .build();
        self.transmits.push_back(Transmit {
            conn,
            message: response,
        });
        self.events.push_back(Event::Challenged { conn, aor });
    }

    fn continuation(
        &self,
        now: UtcTime,
        msg: &Message,
        opaque: &str,
        gssapi: &[u8],
        entropy: &mut dyn Entropy,
    ) -> Message {
        let value = AuthParams::new("TLS-DSK")
            .quoted("opaque", opaque)
            .quoted("gssapi-data", &B64.encode(gssapi))
            .quoted("targetname", &self.config.targetname)
            .quoted("realm", &self.config.realm)
            .token("version", "4")
            .render();
        let tag = random_hex(entropy, 5);
        dated_response(now, msg, 401, "Unauthorized", &tag)
            .header("WWW-Authenticate", &value)
            .header("Server", &self.config.server_header)
            .build()
    }

    fn new_opaque(&self, entropy: &mut dyn Entropy) -> String {
        loop {
            let candidate = random_hex(entropy, 4);
            if !self.pending.contains_key(&candidate) && !self.sas.contains_key(&candidate) {
                return candidate;
            }
        }
    }

    /// C1 → S1 (sip.md §5.2).
    fn start_handshake(
        &mut self,
        now: UtcTime,
        conn: ConnId,
        msg: &Message,
        aor: String,
        c1: &[u8],
        entropy: &mut dyn Entropy,
    ) {
        let (engine, s1) = match self.tls.accept(c1, now) {
            Ok(r) => r,
            Err(e) => {
                self.refuse(now, conn, msg, Some(aor), Refusal::Handshake(e), entropy);
                return;
            }
        };
        // Bound the memory one connection can pin with half-done handshakes.
        let mut mine: Vec<(UtcTime, String)> = self
            .pending
            .iter()
            .filter(|(_, p)| p.conn == conn)
            .map(|(k, p)| (p.started, k.clone()))
            .collect();
        if mine.len() >= MAX_PENDING_PER_CONN {
            mine.sort();
            for (_, k) in mine.iter().take(mine.len() + 1 - MAX_PENDING_PER_CONN) {
                self.pending.remove(k);
            }
        }
        let opaque = self.new_opaque(entropy);
        let response = self.continuation(now, msg, &opaque, &s1, entropy);
        self.pending.insert(
            opaque.clone(),
            PendingHandshake {
                engine,
                conn,
                aor: aor.clone(),
                deadline: now + self.config.handshake_timeout,
                started: now,
            },
        );
        self.transmits.push_back(Transmit {
            conn,
            message: response,
        });
        self.events
            .push_back(Event::HandshakeStarted { conn, aor, opaque });
    }

    /// C2 → S2: the client certificate is checked here, and the SA is created.
    #[allow(clippy::too_many_arguments)]
    fn finish_handshake(
        &mut self,
        now: UtcTime,
        conn: ConnId,
        msg: &Message,
        from: &SipAddress,
        account: Account,
        opaque: &str,
        c2: &[u8],
        entropy: &mut dyn Entropy,
    ) {
        let aor = from.key();
        let Some(pending) = self.pending.remove(opaque) else {
            self.challenge(now, conn, msg, aor, entropy);
            return;
        };
        if pending.conn != conn {
            self.refuse(now, conn, msg, Some(aor), Refusal::WrongConnection, entropy);
            return;
        }
        if pending.aor != aor {
            let reason = Refusal::SaForAnotherUser {
                sa_user: pending.aor,
                from: aor.clone(),
            };
            self.refuse(now, conn, msg, Some(aor), reason, entropy);
            return;
        }
        let (done, s2) = match pending.engine.finish(c2) {
            Ok(r) => r,
            Err(e) => {
                self.refuse(now, conn, msg, Some(aor), Refusal::Handshake(e), entropy);
                return;
            }
        };
        let owns = done
            .peer
            .sip_uris
            .iter()
            .filter_map(|u| SipAddress::parse(u).ok())
            .any(|a| &a == from);
        if !owns {
            let certificate = if done.peer.sip_uris.is_empty() {
                done.peer
                    .subject_cn
                    .clone()
                    .unwrap_or_else(|| "nobody".to_string())
            } else {
                done.peer.sip_uris.join(", ")
            };
            let reason = Refusal::CertificateForAnotherUser {
                certificate,
                from: from.sip_uri(),
            };
            self.refuse(now, conn, msg, Some(aor), reason, entropy);
            return;
        }
        if let Err(reason) = self.admit(conn, account, &aor) {
            self.refuse(now, conn, msg, Some(aor), reason, entropy);
            return;
        }
        if let Err(reason) = check_endpoint_identity(msg) {
            self.refuse(now, conn, msg, Some(aor), reason, entropy);
            return;
        }
        let expires = done.peer.not_after.min(now + self.config.max_sa_lifetime);
        // A fresh SA replaces older ones of the same user on the same connection
        // (re-authentication, sip.md §8).
        self.sas.retain(|_, sa| !(sa.conn == conn && sa.aor == aor));
        self.sas.insert(
            opaque.to_string(),
            SecurityAssociation {
                conn,
                aor: aor.clone(),
                keys: done.keys,
                replay: ReplayWindow::default(),
                snum: 0,
                expires,
            },
        );
        for b in self.bindings.get_mut(&aor).into_iter().flatten() {
            if b.conn == conn {
                b.opaque = opaque.to_string();
            }
        }
        let response = self.continuation(now, msg, opaque, &s2, entropy);
        self.transmits.push_back(Transmit {
            conn,
            message: response,
        });
        self.events.push_back(Event::HandshakeCompleted {
            conn,
            aor,
            opaque: opaque.to_string(),
            certificate_serial: done.peer.serial_hex,
            protocol: done.protocol,
            cipher: done.cipher,
        });
    }

    /// Checks `crand`/`cnum`/`response` against the SA named by `opaque` (sip.md §6.1, §7).
    fn verify(
        &mut self,
        now: UtcTime,
        conn: ConnId,
        msg: &Message,
        aor: &str,
        auth: &AuthHeader<'_>,
    ) -> Result<Verified, Rejected> {
        let opaque = auth
            .get("opaque")
            .ok_or(Refusal::MissingSignatureParameter("opaque"))?;
        let Some(sa) = self.sas.get_mut(opaque) else {
            return Err(Rejected::Rechallenge);
        };
        if sa.expires <= now {
            self.sas.remove(opaque);
            return Err(Rejected::Rechallenge);
        }
        if sa.conn != conn {
            return Err(Refusal::WrongConnection.into());
        }
        if sa.aor != aor {
            return Err(Refusal::SaForAnotherUser {
                sa_user: sa.aor.clone(),
                from: aor.to_string(),
            }
            .into());
        }
        let crand = auth
            .get("crand")
            .ok_or(Refusal::MissingSignatureParameter("crand"))?;
        let cnum_raw = auth
            .get("cnum")
            .ok_or(Refusal::MissingSignatureParameter("cnum"))?;
        let response = auth
            .get("response")
            .ok_or(Refusal::MissingSignatureParameter("response"))?;
        let cnum: u64 = cnum_raw
            .parse()
            .map_err(|_| Refusal::BadCnum(cnum_raw.to_string()))?;
        sa.replay.check(cnum).map_err(Refusal::Replay)?;
        let params = SigParams {
            scheme: auth.scheme,
            rand: crand,
            num: cnum_raw,
            realm: &self.config.realm,
            targetname: &self.config.targetname,
            version: 4,
        };
        let buffer = sign::buffer(msg, &params).map_err(Refusal::Malformed)?;
        if !sa.keys.verify_client(buffer.as_bytes(), response) {
            return Err(Refusal::BadSignature.into());
        }
        sa.replay.record(cnum);
        Ok(Verified {
            opaque: opaque.to_string(),
        })
    }

    /// C3 and every refresh: bind, and answer a signed 200 OK (sip.md §6.2).
    #[allow(clippy::too_many_arguments)]
    fn signed_register(
        &mut self,
        now: UtcTime,
        conn: ConnId,
        msg: &Message,
        from: &SipAddress,
        account: Account,
        v: Verified,
        entropy: &mut dyn Entropy,
    ) {
        let aor = from.key();
        if let Err(reason) = self.admit(conn, account, &aor) {
            // A change to the account takes effect at the next refresh: drop what it holds.
            // Losing remote access ends only what this (external) connection holds; the
            // user's internal endpoints stay signed in.
            if matches!(reason, Refusal::RemoteAccessDenied(_)) {
                self.sas.retain(|_, sa| !(sa.aor == aor && sa.conn == conn));
                if let Some(list) = self.bindings.get_mut(&aor) {
                    list.retain(|b| b.conn != conn);
                }
                self.bindings.retain(|_, l| !l.is_empty());
            } else {
                self.sas.retain(|_, sa| sa.aor != aor);
                self.bindings.remove(&aor);
            }
            self.refuse(now, conn, msg, Some(aor), reason, entropy);
            return;
        }
        let epid = match endpoint_epid(msg) {
            Ok(epid) => epid,
            Err(reason) => {
                self.refuse(now, conn, msg, Some(aor), reason, entropy);
                return;
            }
        };
        let contact = msg.header("Contact").unwrap_or_default().to_string();
        let instance = msg.contact().and_then(|c| {
            c.param("+sip.instance")
                .map(|i| instance_uuid(i).to_string())
        });
        let requested = match msg.expires() {
            Some(Ok(n)) => Some(n),
            _ => None,
        };
        let tag = random_hex(entropy, 5);
        if requested == Some(0) {
            if let Some(list) = self.bindings.get_mut(&aor) {
                list.retain(|b| !(b.epid == epid && b.conn == conn));
            }
            self.bindings.retain(|_, l| !l.is_empty());
            let response = dated_response(now, msg, 200, "OK", &tag)
                .header("Expires", "0")
                .header("Server", &self.config.server_header);
            self.send_signed(conn, &v.opaque, response, entropy);
            self.events
                .push_back(Event::Unregistered { conn, aor, epid });
            return;
        }
        let expires = requested
            .unwrap_or(self.config.registration_expires)
            .min(self.config.max_registration_expires)
            .max(1);
        let gruu = format!("{};opaque=user:epid:{};gruu", from.sip_uri(), epid);
        let list = self.bindings.entry(aor.clone()).or_default();
        let existing = list.iter_mut().find(|b| b.epid == epid);
        let refreshed = existing.is_some();
        let binding = Binding {
            aor: aor.clone(),
            epid: epid.clone(),
            instance,
            contact: contact.clone(),
            gruu: gruu.clone(),
            conn,
            expires: now + time::Duration::seconds(i64::from(expires)),
            opaque: v.opaque.clone(),
        };
        match existing {
            Some(b) => *b = binding,
            None => list.push(binding),
        }
        let mut response = dated_response(now, msg, 200, "OK", &tag);
        if !contact.is_empty() {
            response = response.header(
                "Contact",
                &format!("{contact};expires={expires};gruu=\"{gruu}\""),
            );
        }
        let response = response
            .header("Expires", &expires.to_string())
            .header(
                "ms-keep-alive",
                &format!(
                    "UAS; tcp=no; hop-hop=yes; end-end=no; timeout={}",
                    self.config.keepalive_timeout
                ),
            )
            // One tag per line: SIPE matches a Supported value only as a whole line (§6.2).
            .header("Supported", "gruu-10")
            .header("Supported", "adhoclist")
            .header("Supported", "msrtc-event-categories")
            .header(
                "Allow-Events",
                "vnd-microsoft-provisioning,vnd-microsoft-roaming-contacts,vnd-microsoft-roaming-ACL,presence,presence.wpending,vnd-microsoft-roaming-self,vnd-microsoft-provisioning-v2",
            )
            .header("Server", &self.config.server_header);
        self.send_signed(conn, &v.opaque, response, entropy);
        self.events.push_back(Event::Registered {
            conn,
            aor,
            epid,
            expires,
            refreshed,
        });
    }

    /// Whether `account` may hold a registration over `conn`: the store's verdict, and
    /// remote-access policy against the connection's network.
    fn admit(&self, conn: ConnId, account: Account, aor: &str) -> Result<(), Refusal> {
        match account {
            Account::Enabled => Ok(()),
            Account::InternalOnly if self.network(conn) == PeerNetwork::Internal => Ok(()),
            Account::InternalOnly => Err(Refusal::RemoteAccessDenied(aor.to_string())),
            Account::NotSipEnabled => Err(Refusal::NotSipEnabled(aor.to_string())),
            Account::Disabled => Err(Refusal::AccountNotEnabled(aor.to_string())),
            Account::Unknown => Err(Refusal::UnknownUser(aor.to_string())),
            Account::Unavailable => Err(Refusal::DatabaseUnavailable),
        }
    }

    // ---- requests after sign-in ------------------------------------------------------------

    fn request(
        &mut self,
        now: UtcTime,
        conn: ConnId,
        msg: &Message,
        from: &SipAddress,
        entropy: &mut dyn Entropy,
    ) {
        let aor = from.key();
        let auth = msg
            .header_all("Authorization")
            .filter_map(|v| AuthHeader::parse(v).ok())
            .find(|a| a.is_scheme("TLS-DSK"));
        let Some(auth) = auth else {
            self.refuse(now, conn, msg, Some(aor), Refusal::NotSignedIn, entropy);
            return;
        };
        let verified = match self.verify(now, conn, msg, &aor, &auth) {
            Ok(v) => v,
            // A 401 to anything but REGISTER makes SIPE resend with the same SA forever
            // (sip.md §8): refuse instead; its next REGISTER gets the fresh challenge.
            Err(Rejected::Rechallenge) => {
                self.refuse(now, conn, msg, Some(aor), Refusal::NotSignedIn, entropy);
                return;
            }
            Err(Rejected::Refused(reason)) => {
                self.refuse(now, conn, msg, Some(aor), reason, entropy);
                return;
            }
        };
        let method = msg.method().unwrap_or_default().to_ascii_uppercase();
        let tag = random_hex(entropy, 5);
        let (response, status, event_name) = if method == "SUBSCRIBE" {
            self.subscribe(now, msg, from, &tag)
        } else {
            let (code, phrase) = answer_to(&method);
            (dated_response(now, msg, code, phrase, &tag), code, None)
        };
        let response = response.header("Server", &self.config.server_header);
        self.send_signed(conn, &verified.opaque, response, entropy);
        self.events.push_back(Event::Answered {
            conn,
            aor,
            method,
            event: event_name,
            status,
        });
    }

    /// Self-subscriptions (sip.md §10.1–10.3). Their first NOTIFY rides on the 200 OK.
    fn subscribe(
        &self,
        now: UtcTime,
        msg: &Message,
        from: &SipAddress,
        tag: &str,
    ) -> (MessageBuilder, u16, Option<String>) {
        let event = msg
            .header("Event")
            .map(|e| e.split(';').next().unwrap_or("").trim().to_string())
            .unwrap_or_default();
        let one_shot = matches!(msg.expires(), Some(Ok(0)));
        let expires = if one_shot {
            0
        } else {
            self.config.subscription_expires
        };
        let contact = format!("<sip:{};transport=tls>", self.config.targetname);
        let ok = |b: MessageBuilder| {
            b.header("Expires", &expires.to_string())
                .header("Contact", &contact)
        };
        let piggyback = |content_type: &str, body: String| {
            ok(dated_response(now, msg, 200, "OK", tag))
                .header("Event", &event)
                .header("ms-piggyback-cseq", "1")
                .body(content_type, body.into_bytes())
        };
        let (response, status) = match event.to_ascii_lowercase().as_str() {
            "vnd-microsoft-roaming-contacts" => (
                piggyback(bodies::ROAMING_CONTACTS_TYPE, bodies::roaming_contacts()),
                200,
            ),
            "vnd-microsoft-provisioning-v2" => (
                piggyback(bodies::PROVISIONING_V2_TYPE, bodies::provisioning_v2()),
                200,
            ),
            "vnd-microsoft-roaming-self" => (
                piggyback(
                    bodies::ROAMING_SELF_TYPE,
                    bodies::roaming_self(&from.sip_uri()),
                ),
                200,
            ),
            "presence"
            | "presence.wpending"
            | "vnd-microsoft-roaming-acl"
            | "vnd-microsoft-provisioning" => (ok(dated_response(now, msg, 200, "OK", tag)), 200),
            _ => (
                dated_response(now, msg, 489, "Bad Event", tag).header(
                    "Allow-Events",
                    "presence,vnd-microsoft-roaming-contacts,vnd-microsoft-roaming-self,vnd-microsoft-provisioning-v2",
                ),
                489,
            ),
        };
        (response, status, Some(event))
    }

    /// Builds, signs with the SA's server key and queues a response (sip.md §7.2).
    fn send_signed(
        &mut self,
        conn: ConnId,
        opaque: &str,
        builder: MessageBuilder,
        entropy: &mut dyn Entropy,
    ) {
        let message = builder.build();
        let srand = random_hex(entropy, 4);
        let Some(sa) = self.sas.get_mut(opaque) else {
            self.transmits.push_back(Transmit { conn, message });
            return;
        };
        sa.snum += 1;
        let snum = sa.snum.to_string();
        let params = SigParams {
            scheme: "TLS-DSK",
            rand: &srand,
            num: &snum,
            realm: &self.config.realm,
            targetname: &self.config.targetname,
            version: 4,
        };
        let message = match sign::buffer(&message, &params) {
            Ok(buffer) => {
                let rspauth = sa.keys.sign_server(buffer.as_bytes());
                let value = AuthParams::new("TLS-DSK")
                    .quoted("qop", "auth")
                    .quoted("opaque", opaque)
                    .quoted("srand", &srand)
                    .quoted("snum", &snum)
                    .quoted("rspauth", &rspauth)
                    .quoted("targetname", &self.config.targetname)
                    .quoted("realm", &self.config.realm)
                    .token("version", "4")
                    .render();
                message.with_header("Authentication-Info", &value)
            }
            // Only reachable if our own builder dropped Call-ID/CSeq/From/To.
            Err(_) => message,
        };
        self.transmits.push_back(Transmit { conn, message });
    }

    /// Refuses with a status, a `Warning` in lyncd's words and a diagnostic header with the
    /// code and Microsoft's reason (unsigned: a refused request has no trustworthy SA to sign
    /// with).
    #[allow(clippy::too_many_arguments)]
    fn refuse(
        &mut self,
        now: UtcTime,
        conn: ConnId,
        msg: &Message,
        aor: Option<String>,
        reason: Refusal,
        entropy: &mut dyn Entropy,
    ) {
        let (code, phrase) = reason.status();
        let text = quotable(&reason.to_string());
        let tag = random_hex(entropy, 5);
        let target = &self.config.targetname;
        let mut response = dated_response(now, msg, code, phrase, &tag)
            .header("Warning", &format!("399 {target} \"{text}\""))
            .header(
                reason.diagnostic_header(),
                &msdiag::header_value(reason.diagnostic_code(), target),
            );
        if let Some(secs) = reason.retry_after() {
            response = response.header("Retry-After", &secs.to_string());
        }
        let response = response
            .header("Server", &self.config.server_header)
            .build();
        self.transmits.push_back(Transmit {
            conn,
            message: response,
        });
        self.events.push_back(Event::Refused {
            conn,
            aor,
            method: msg.method().unwrap_or_default().to_string(),
            reason,
        });
    }
}

/// How a signed request other than REGISTER and SUBSCRIBE is answered. lyncd routes no calls or
/// messages yet, so those get "480"; dialogs it never created get "481".
fn answer_to(method: &str) -> (u16, &'static str) {
    match method {
        "SERVICE" | "OPTIONS" | "PUBLISH" | "NOTIFY" | "BENOTIFY" => (200, "OK"),
        "BYE" | "CANCEL" | "PRACK" | "UPDATE" => (481, "Call Leg/Transaction Does Not Exist"),
        "INVITE" | "MESSAGE" | "INFO" | "REFER" => (480, "Temporarily Unavailable"),
        _ => (501, "Not Implemented"),
    }
}

/// [MS-SIPAE] 3.3.5.2: when a REGISTER names its endpoint both by `epid` and by
/// `+sip.instance`, the instance must be the GUID derived from the epid (sip.md §2.1, §5.9).
fn check_endpoint_identity(msg: &Message) -> Result<(), Refusal> {
    let epid = endpoint_epid(msg)?;
    let instance = msg.contact().and_then(|c| {
        c.param("+sip.instance")
            .map(|i| instance_uuid(i).to_string())
    });
    match instance {
        Some(instance) if !epid_to_instance(&epid).eq_ignore_ascii_case(&instance) => {
            Err(Refusal::InstanceMismatch { instance, epid })
        }
        _ => Ok(()),
    }
}

/// Why [`Registrar::verify`] did not accept a signed request.
enum Rejected {
    /// The SA is unknown or over: a REGISTER gets a fresh challenge (sip.md §8).
    Rechallenge,
    Refused(Refusal),
}

impl From<Refusal> for Rejected {
    fn from(r: Refusal) -> Self {
        Rejected::Refused(r)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn request_domains() {
        assert_eq!(request_domain("sip:contoso.com"), "contoso.com");
        assert_eq!(
            request_domain("sip:contoso.com;transport=tls"),
            "contoso.com"
        );
        assert_eq!(request_domain("SIP:alice@Contoso.com:5061"), "Contoso.com");
    }

    #[test]
    fn instance_values() {
        assert_eq!(instance_uuid("<urn:uuid:5ccdb10d-dca1>"), "5ccdb10d-dca1");
        assert_eq!(instance_uuid("5ccdb10d"), "5ccdb10d");
    }

    #[test]
    fn client_hello_detection() {
        assert!(is_client_hello(&[0x16, 3, 1, 0, 53, 1, 0]));
        assert!(!is_client_hello(&[0x16, 3, 1, 0, 53, 11, 0]));
        assert!(!is_client_hello(b"garbage"));
    }

    #[test]
    fn dates_look_like_the_spec_examples() {
        let t = time::macros::datetime!(2025-11-25 10:15:02 UTC);
        assert_eq!(http_date(t), "Tue, 25 Nov 2025 10:15:02 GMT");
    }
}
