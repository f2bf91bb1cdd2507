//! The fixed cast of generated data: three organizations, their users, keys and accounts.
//!
//! Built once per simulator from its seed, so every generated activity refers to the same
//! people and ids (filters by organization or user find real matches). Names, emails and
//! organization names deliberately include accents, CJK, emoji, quotes and backslashes.

use crate::rng::Rng;

pub(crate) struct Org {
    pub(crate) id: String,
    pub(crate) uuid: String,
    pub(crate) name: &'static str,
}

pub(crate) struct User {
    pub(crate) id: String,
    pub(crate) name: &'static str,
    pub(crate) email: &'static str,
    pub(crate) org: usize,
}

pub(crate) struct World {
    pub(crate) orgs: Vec<Org>,
    pub(crate) users: Vec<User>,
    pub(crate) api_key_ids: Vec<String>,
    pub(crate) admin_api_key_ids: Vec<String>,
    pub(crate) service_account_ids: Vec<String>,
}

const ORG_NAMES: [&str; 3] = ["Acme Corp", "Globex Ünited 日本", "Initech \"Labs\""];

/// (display name, email address); some need JSON escapes, some are not ASCII.
const PEOPLE: [(&str, &str); 16] = [
    ("Renée Dubois", "renee.dubois@acme.example"),
    ("Zoë Ångström", "zoë.ångström@acme.example"),
    ("田中 花子", "hanako.tanaka@globex.example"),
    ("José Núñez", "jose.nunez@initech.example"),
    ("Ольга Смирнова", "olga@acme.example"),
    ("Aarav Sharma", "aarav.sharma@globex.example"),
    ("Siobhán O'Brien", "siobhan.o'brien@initech.example"),
    ("Chloé \"CJ\" Jackson", "cj@acme.example"),
    ("Łukasz Wiśniewski", "lukasz@globex.example"),
    ("Ngozi Okafor", "ngozi.okafor@initech.example"),
    ("陈美玲", "陈美玲@globex.example"),
    ("Bjørn Øvergård", "bjorn@acme.example"),
    ("Fatima Al-Zahra", "fatima.alzahra@initech.example"),
    ("Sam 🦀 Rivera", "sam.rivera@acme.example"),
    ("Dana Back\\slash", "dana@globex.example"),
    ("山田 太郎", "taro.yamada@initech.example"),
];

/// Email domains of the organizations, in `ORG_NAMES` order.
const ORG_DOMAINS: [&str; 3] = ["@acme.example", "@globex.example", "@initech.example"];

fn org_of_email(email: &str) -> Option<usize> {
    ORG_DOMAINS.iter().position(|d| email.ends_with(d))
}

impl World {
    pub(crate) fn new(seed: u64) -> Self {
        let mut rng = Rng::stream(seed, "world");
        let orgs = ORG_NAMES
            .iter()
            .map(|&name| Org { id: rng.prefixed_id("org_"), uuid: rng.uuid(), name })
            .collect();
        let users = PEOPLE
            .iter()
            .enumerate()
            .map(|(i, &(name, email))| User {
                id: rng.prefixed_id("user_"),
                name,
                email,
                org: org_of_email(email).unwrap_or(i % ORG_NAMES.len()),
            })
            .collect();
        let api_key_ids = (0..4).map(|_| rng.prefixed_id("apikey_")).collect();
        let admin_api_key_ids = (0..2).map(|_| rng.prefixed_id("adminkey_")).collect();
        let service_account_ids = (0..3).map(|_| rng.prefixed_id("svcacct_")).collect();
        Self { orgs, users, api_key_ids, admin_api_key_ids, service_account_ids }
    }

    /// A user of organization `org`.
    pub(crate) fn user_of(&self, rng: &mut Rng, org: usize) -> &User {
        let members: Vec<&User> = self.users.iter().filter(|u| u.org == org).collect();
        match members.as_slice() {
            [] => rng.pick(&self.users),
            some => some[rng.index(some.len())],
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_world_is_the_same_for_the_same_seed() {
        let (a, b) = (World::new(3), World::new(3));
        assert_eq!(a.orgs[0].id, b.orgs[0].id);
        assert_eq!(a.users[5].id, b.users[5].id);
        assert_ne!(World::new(4).orgs[0].id, a.orgs[0].id);
    }

    #[test]
    fn users_belong_to_the_organization_of_their_email_domain() {
        let world = World::new(1);
        for user in &world.users {
            assert!(user.email.ends_with(ORG_DOMAINS[user.org]), "{}", user.email);
        }
    }

    #[test]
    fn every_organization_has_users() {
        let world = World::new(1);
        assert_eq!(world.orgs.len(), 3);
        for org in 0..3 {
            assert!(world.users.iter().any(|u| u.org == org));
        }
    }
}
