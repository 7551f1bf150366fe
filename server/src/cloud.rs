//! The Netdata Cloud-shaped world strata presents: one space per server
//! and its rooms. The space id is a UUID made on first start and kept in
//! `<data-dir>/cloud/space.json`, so clients that saved it (the Grafana
//! plugin stores it in every panel) keep working across restarts. Rooms:
//! `All nodes` (id `all-nodes`, always there, no filter), the rooms of the
//! config file, and rooms created through the API (kept in
//! `<data-dir>/cloud/rooms.json`, written atomically). A room id is its
//! name's slug; ids are unique.

use std::path::{Path, PathBuf};
use std::sync::{Mutex, RwLock};

use strata_engine::meta::room::slug;
use strata_engine::meta::{RoomDef, RoomFilter};

use crate::error::ApiError;

/// Id of the room that always holds every node.
pub const ALL_NODES: &str = "all-nodes";

/// Where a room came from.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Origin {
    Builtin,
    Config,
    Api,
}

#[derive(Debug, Clone)]
pub struct Room {
    pub id: String,
    pub name: String,
    /// `None` for `All nodes`.
    pub def: Option<RoomDef>,
    pub filter: Option<RoomFilter>,
    pub origin: Origin,
}

#[derive(Debug)]
pub struct Cloud {
    pub space_id: String,
    pub space_name: String,
    rooms: RwLock<Vec<Room>>,
    /// `<data-dir>/cloud`, when rooms are persisted.
    dir: Option<PathBuf>,
    /// Held by a room's creation from insert to saved file: creations run
    /// one at a time, so each saves a list holding every earlier one and
    /// none writes the temporary file under another (concurrent ones
    /// failed with 500s, and an older list could overwrite a newer one).
    saving: Mutex<()>,
}

fn io(what: &str, p: &Path, e: std::io::Error) -> String {
    format!("{what} {}: {e}", p.display())
}

/// Writes `bytes` to `path` atomically, as the token file is written.
fn write_atomic(path: &Path, bytes: &[u8]) -> Result<(), crate::auth::store::StoreError> {
    crate::auth::store::write_atomic(path, bytes, 0o644)
}

/// A random (version 4) UUID.
fn new_uuid() -> Result<String, String> {
    let mut b = [0u8; 16];
    getrandom::fill(&mut b).map_err(|e| format!("no randomness for the space id: {e}"))?;
    b[6] = (b[6] & 0x0f) | 0x40;
    b[8] = (b[8] & 0x3f) | 0x80;
    let h: String = b.iter().map(|x| format!("{x:02x}")).collect();
    Ok(format!("{}-{}-{}-{}-{}", &h[0..8], &h[8..12], &h[12..16], &h[16..20], &h[20..32]))
}

fn room_of(def: RoomDef, origin: Origin) -> Result<Room, ApiError> {
    let filter = def.compile()?;
    Ok(Room { id: def.slug(), name: def.name.trim().to_string(), filter: Some(filter), def: Some(def), origin })
}

impl Cloud {
    /// Loads (or creates) the space id and the API-made rooms under
    /// `data_dir`; `config_rooms` come from the config file.
    pub fn open(data_dir: Option<&Path>, space_name: &str, config_rooms: &[RoomDef]) -> Result<Cloud, String> {
        let dir = data_dir.map(|d| d.join("cloud"));
        let mut space_id = None;
        let mut saved: Vec<RoomDef> = Vec::new();
        if let Some(dir) = &dir {
            std::fs::create_dir_all(dir).map_err(|e| io("creating", dir, e))?;
            let sp = dir.join("space.json");
            match std::fs::read(&sp) {
                Ok(bytes) => {
                    let v: serde_json::Value =
                        serde_json::from_slice(&bytes).map_err(|e| format!("{}: {e}", sp.display()))?;
                    space_id = v["id"].as_str().map(str::to_string);
                }
                Err(e) if e.kind() == std::io::ErrorKind::NotFound => {}
                Err(e) => return Err(io("reading", &sp, e)),
            }
            if space_id.is_none() {
                let id = new_uuid()?;
                write_atomic(&sp, serde_json::json!({ "id": id }).to_string().as_bytes()).map_err(|e| e.to_string())?;
                space_id = Some(id);
            }
            let rp = dir.join("rooms.json");
            match std::fs::read(&rp) {
                Ok(bytes) => saved = serde_json::from_slice(&bytes).map_err(|e| format!("{}: {e}", rp.display()))?,
                Err(e) if e.kind() == std::io::ErrorKind::NotFound => {}
                Err(e) => return Err(io("reading", &rp, e)),
            }
        }
        let space_id = match space_id {
            Some(id) => id,
            None => new_uuid()?,
        };
        let cloud = Cloud {
            space_id,
            space_name: space_name.to_string(),
            rooms: RwLock::new(vec![Room {
                id: ALL_NODES.into(),
                name: "All nodes".into(),
                def: None,
                filter: None,
                origin: Origin::Builtin,
            }]),
            dir,
            saving: Mutex::new(()),
        };
        for def in config_rooms {
            cloud
                .insert(room_of(def.clone(), Origin::Config).map_err(|e| format!("config room {:?}: {e}", def.name))?)
                .map_err(|e| format!("config room {:?}: {e}", def.name))?;
        }
        for def in saved {
            let name = def.name.clone();
            match room_of(def, Origin::Api).and_then(|r| cloud.insert(r)) {
                Ok(()) => {}
                Err(e) => tracing::warn!(room = %name, error = %e, "saved room skipped"),
            }
        }
        Ok(cloud)
    }

    fn insert(&self, room: Room) -> Result<(), ApiError> {
        let mut rooms = self.rooms.write().map_err(|_| ApiError::Internal("rooms lock poisoned".into()))?;
        if let Some(r) = rooms.iter().find(|r| r.id == room.id) {
            return Err(ApiError::Conflict(format!("a room with id '{}' exists already ('{}')", room.id, r.name)));
        }
        rooms.push(room);
        Ok(())
    }

    /// Every room, `All nodes` first.
    pub fn rooms(&self) -> Vec<Room> {
        self.rooms.read().map(|r| r.clone()).unwrap_or_default()
    }

    /// 404 unless `space` is this server's space.
    pub fn check_space(&self, space: &str) -> Result<(), ApiError> {
        if space == self.space_id {
            Ok(())
        } else {
            Err(ApiError::NotFound(format!("no space '{space}' (this server's space is '{}')", self.space_id)))
        }
    }

    /// The room `room` of `space`, or a 404 naming what is unknown.
    pub fn room(&self, space: &str, room: &str) -> Result<Room, ApiError> {
        self.check_space(space)?;
        self.rooms()
            .into_iter()
            .find(|r| r.id == room)
            .ok_or_else(|| ApiError::NotFound(format!("no room '{room}' in space '{space}'")))
    }

    /// Creates a room from the API and saves the API-made rooms.
    pub fn add_room(&self, def: RoomDef) -> Result<Room, ApiError> {
        if slug(&def.name) == ALL_NODES {
            return Err(ApiError::Conflict("'All nodes' is the built-in room".into()));
        }
        let room = room_of(def, Origin::Api)?;
        let _saving = self.saving.lock().map_err(|_| ApiError::Internal("rooms lock poisoned".into()))?;
        self.insert(room.clone())?;
        if let Some(dir) = &self.dir {
            let saved: Vec<RoomDef> =
                self.rooms().into_iter().filter(|r| r.origin == Origin::Api).filter_map(|r| r.def).collect();
            let bytes = serde_json::to_vec_pretty(&saved).map_err(|e| ApiError::Internal(e.to_string()))?;
            if let Err(e) = write_atomic(&dir.join("rooms.json"), &bytes) {
                // Not saved: take it back, so what the API shows is what survives a restart.
                if let Ok(mut rooms) = self.rooms.write() {
                    rooms.retain(|r| r.id != room.id);
                }
                tracing::error!(error = %e, "saving rooms");
                return Err(crate::auth::store::not_saved(e, "the room was not created"));
            }
        }
        Ok(room)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn space_id_and_api_rooms_survive_a_restart() {
        let dir = std::env::temp_dir().join(format!("strata-cloud-test-{}", std::process::id()));
        let _ = std::fs::remove_dir_all(&dir);
        let conf = [RoomDef { name: "Web".into(), nodes: vec!["web-*".into()], host_labels: vec![] }];
        let a = Cloud::open(Some(&dir), "lab", &conf).expect("open");
        assert_eq!(a.space_id.len(), 36);
        let def = RoomDef { name: "Prod DB".into(), nodes: vec![], host_labels: vec!["env:prod".into()] };
        assert_eq!(a.add_room(def.clone()).expect("added").id, "prod-db");
        assert!(matches!(a.add_room(def), Err(ApiError::Conflict(_))));
        let b = Cloud::open(Some(&dir), "lab", &conf).expect("reopen");
        assert_eq!(a.space_id, b.space_id);
        let ids: Vec<String> = b.rooms().into_iter().map(|r| r.id).collect();
        assert_eq!(ids, ["all-nodes", "web", "prod-db"]);
        assert!(matches!(b.room("nope", "web"), Err(ApiError::NotFound(_))));
        assert!(matches!(b.room(&b.space_id, "nope"), Err(ApiError::NotFound(_))));
        let _ = std::fs::remove_dir_all(&dir);
    }

    #[test]
    fn rooms_created_at_once_are_all_saved() {
        let dir = std::env::temp_dir().join(format!("strata-cloud-race-{}", std::process::id()));
        let _ = std::fs::remove_dir_all(&dir);
        let a = Cloud::open(Some(&dir), "lab", &[]).expect("open");
        std::thread::scope(|s| {
            for t in 0..8 {
                let a = &a;
                s.spawn(move || {
                    for i in 0..5 {
                        let def =
                            RoomDef { name: format!("r{t}-{i}"), nodes: vec!["web-*".into()], host_labels: vec![] };
                        a.add_room(def).expect("created and saved");
                    }
                });
            }
        });
        let shown: Vec<String> = a.rooms().into_iter().map(|r| r.id).collect();
        let saved: Vec<String> =
            Cloud::open(Some(&dir), "lab", &[]).expect("reopen").rooms().into_iter().map(|r| r.id).collect();
        assert_eq!(shown.len(), 41, "the built-in room and 40 made");
        assert_eq!(saved, shown, "what the API shows is what survives a restart");
        let _ = std::fs::remove_dir_all(&dir);
    }
}
