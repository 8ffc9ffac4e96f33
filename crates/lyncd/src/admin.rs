//! `lyncd user …`, `lyncd ca …`, `lyncd migrate` and `lyncd registrations`.

use std::process::ExitCode;

use lyncd_core::{Entropy, OsEntropy, SipAddress, UtcTime};
use lyncd_store::{NewUser, Store, StoreError, User, UserFlags};

use crate::cli::{CaCommand, DataDir, UserCommand};

async fn open(data: &DataDir) -> anyhow::Result<Store> {
    data.open().await
}

/// `lyncd migrate`: opening applies the pending migrations.
pub async fn migrate(data: &DataDir) -> anyhow::Result<ExitCode> {
    let store = open(data).await?;
    let version = store.schema_version().await?;
    println!("schema version {version} ({})", store.backend());
    store.close().await;
    Ok(ExitCode::SUCCESS)
}

/// `lyncd registrations [USER] [--json]`.
pub async fn registrations(
    user: Option<&str>,
    json: bool,
    data: &DataDir,
) -> anyhow::Result<ExitCode> {
    let user = user.map(parse_address).transpose()?;
    let store = open(data).await?;
    let list = store
        .registrations(user.as_ref(), UtcTime::now_utc())
        .await?;
    if json {
        for r in &list {
            println!("{}", lyncd_server::health::registration_json(r));
        }
    } else if list.is_empty() {
        println!("no registrations");
    } else {
        println!("{:<40} {:<38} {:<24} EXPIRES", "ADDRESS", "EPID", "NODE");
        for r in &list {
            println!(
                "{:<40} {:<38} {:<24} {}",
                r.address.to_string(),
                r.epid,
                r.node,
                lyncd_core::format_iso(r.expires_at)
            );
        }
    }
    Ok(ExitCode::SUCCESS)
}

fn parse_address(s: &str) -> anyhow::Result<SipAddress> {
    SipAddress::parse(s).map_err(|e| anyhow::anyhow!("{e}"))
}

pub async fn user(cmd: UserCommand) -> anyhow::Result<ExitCode> {
    match cmd {
        UserCommand::Add {
            address,
            password_stdin,
            name,
            data,
        } => {
            let address = parse_address(&address)?;
            let store = open(&data).await?;
            if store.user(&address).await?.is_some() {
                anyhow::bail!("{address} already exists; nothing was changed");
            }
            let password =
                crate::password::read(password_stdin, &format!("Password for {address}: "), true)?;
            let mut salt = [0u8; 16];
            OsEntropy.fill(&mut salt);
            let hash = tokio::task::spawn_blocking(move || {
                lyncd_store::password::hash_password(password.expose(), &salt)
            })
            .await??;
            let object_id = uuid::Uuid::from_bytes(OsEntropy.bytes::<16>())
                .hyphenated()
                .to_string();
            let added = store
                .add_user(
                    NewUser {
                        address: address.clone(),
                        password_hash: hash,
                        display_name: name,
                        object_id,
                    },
                    UtcTime::now_utc(),
                )
                .await;
            match added {
                Ok(a) => {
                    if a.tenant_created {
                        println!("tenant {} created", address.domain());
                    }
                    println!("user {address} added");
                    Ok(ExitCode::SUCCESS)
                }
                Err(StoreError::UserExists(_)) => {
                    anyhow::bail!("{address} already exists; nothing was changed")
                }
                Err(e) => Err(e.into()),
            }
        }
        UserCommand::List { domain, json, data } => {
            let store = open(&data).await?;
            let users = store.users(domain.as_deref()).await?;
            if json {
                for u in &users {
                    println!(
                        "{}",
                        serde_json::json!({
                            "address": u.address.to_string(),
                            "display_name": u.display_name,
                            "enabled": u.enabled,
                            "sip_enabled": u.sip_enabled,
                            "remote_access": u.remote_access,
                            "created_at": lyncd_core::format_iso(u.created_at),
                        })
                    );
                }
            } else if users.is_empty() {
                println!("no users");
            } else {
                println!(
                    "{:<40} {:<9} {:<4} {:<7} NAME",
                    "ADDRESS", "STATE", "SIP", "REMOTE"
                );
                for u in &users {
                    let state = if u.enabled { "enabled" } else { "disabled" };
                    println!(
                        "{:<40} {:<9} {:<4} {:<7} {}",
                        u.address.to_string(),
                        state,
                        on_off(u.sip_enabled),
                        on_off(u.remote_access),
                        u.display_name.as_deref().unwrap_or("")
                    );
                }
            }
            Ok(ExitCode::SUCCESS)
        }
        UserCommand::Disable { address, data } => set_enabled(&address, &data, false).await,
        UserCommand::Enable { address, data } => set_enabled(&address, &data, true).await,
        UserCommand::Set {
            address,
            sip,
            remote_access,
            data,
        } => {
            let change = UserFlags {
                sip_enabled: sip.map(bool::from),
                remote_access: remote_access.map(bool::from),
            };
            set_flags(&address, &data, change).await
        }
    }
}

fn on_off(flag: bool) -> &'static str {
    if flag { "on" } else { "off" }
}

fn describe_flags(u: &User) -> String {
    format!(
        "sip {}, remote access {}{}",
        on_off(u.sip_enabled),
        on_off(u.remote_access),
        if u.enabled {
            ""
        } else {
            " (the user is disabled)"
        }
    )
}

async fn set_flags(address: &str, data: &DataDir, change: UserFlags) -> anyhow::Result<ExitCode> {
    let address = parse_address(address)?;
    let store = open(data).await?;
    match store
        .set_user_flags(&address, change, UtcTime::now_utc())
        .await
    {
        Ok(u) => {
            println!("user {address}: {}", describe_flags(&u));
            Ok(ExitCode::SUCCESS)
        }
        Err(StoreError::UnknownUser(_)) => anyhow::bail!("there is no user {address}"),
        Err(e) => Err(e.into()),
    }
}

async fn set_enabled(address: &str, data: &DataDir, enabled: bool) -> anyhow::Result<ExitCode> {
    let address = parse_address(address)?;
    let store = open(data).await?;
    match store
        .set_enabled(&address, enabled, UtcTime::now_utc())
        .await
    {
        Ok(_) => {
            println!(
                "user {address} {}",
                if enabled { "enabled" } else { "disabled" }
            );
            Ok(ExitCode::SUCCESS)
        }
        Err(StoreError::UnknownUser(_)) => anyhow::bail!("there is no user {address}"),
        Err(e) => Err(e.into()),
    }
}

pub async fn ca(cmd: CaCommand) -> anyhow::Result<ExitCode> {
    match cmd {
        CaCommand::Export { data } => {
            let store = open(&data).await?;
            let ca = lyncd_server::keys::load_or_create_ca(&store, UtcTime::now_utc()).await?;
            print!("{}", ca.cert_pem());
            Ok(ExitCode::SUCCESS)
        }
    }
}
