//! A struct read only from a JSON object. serde's derived structs also read
//! from an array of their fields in order (`"window": [1, 2, 60]`), which
//! no client means and the lenient reader refuses; through this wrapper an
//! array is a type error, as it is there.

use std::fmt;
use std::marker::PhantomData;

use serde::de::{Deserialize, Deserializer, MapAccess, Visitor};

#[derive(Debug, Default)]
pub(crate) struct MapOnly<T>(pub T);

impl<'de, T: Deserialize<'de>> Deserialize<'de> for MapOnly<T> {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        struct Only<T>(PhantomData<T>);
        impl<'de, T: Deserialize<'de>> Visitor<'de> for Only<T> {
            type Value = MapOnly<T>;
            fn expecting(&self, f: &mut fmt::Formatter) -> fmt::Result {
                f.write_str("an object")
            }
            fn visit_map<A: MapAccess<'de>>(self, map: A) -> Result<Self::Value, A::Error> {
                T::deserialize(serde::de::value::MapAccessDeserializer::new(map)).map(MapOnly)
            }
        }
        d.deserialize_map(Only(PhantomData))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[derive(Debug, serde::Deserialize, PartialEq)]
    struct Two {
        a: i64,
        b: i64,
    }

    #[test]
    fn objects_read_and_arrays_of_fields_do_not() {
        let ok: MapOnly<Two> = serde_json::from_str(r#"{"b": 2, "a": 1}"#).expect("object");
        assert_eq!(ok.0, Two { a: 1, b: 2 });
        assert!(serde_json::from_str::<Two>("[1, 2]").is_ok(), "serde alone reads the array");
        assert!(serde_json::from_str::<MapOnly<Two>>("[1, 2]").is_err());
    }
}
