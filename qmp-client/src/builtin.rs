//! The client's own commands as typed [`Command`]s, shared by the blocking and the
//! tokio drivers: HMP, fd passing and introspection are each one `execute` of one of
//! these, so the arguments and the decoding of the reply are written once.

use qapi_runtime::Command;
use serde::Serialize;

use crate::introspect::{self, ServerSchema};
use crate::options::AddFdInfo;

/// `human-monitor-command` with a command line; returns the HMP output.
pub(crate) struct Hmp<'a>(pub(crate) &'a str);

/// `getfd`: the fd riding on the request gets this name.
pub(crate) struct GetFd<'a>(pub(crate) &'a str);

/// `add-fd`: the fd riding on the request joins a set (a new one for `None`).
#[derive(Serialize)]
pub(crate) struct AddFd<'a> {
    #[serde(rename = "fdset-id", skip_serializing_if = "Option::is_none")]
    pub(crate) fdset_id: Option<i64>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub(crate) opaque: Option<&'a str>,
}

/// `query-qmp-schema`, decoded into the client's own small model.
pub(crate) struct QuerySchema;

impl Command for Hmp<'_> {
    const NAME: &'static str = "human-monitor-command";
    const HAS_ARGUMENTS: bool = true;
    const ALLOW_OOB: bool = false;
    const SUCCESS_RESPONSE: bool = true;
    type Returns = String;
    fn write_arguments(&self, out: &mut Vec<u8>) -> Result<(), serde_json::Error> {
        #[derive(Serialize)]
        struct Args<'a> {
            #[serde(rename = "command-line")]
            command_line: &'a str,
        }
        serde_json::to_writer(
            out,
            &Args {
                command_line: self.0,
            },
        )
    }
    fn decode_return(json: &str) -> Result<String, serde_json::Error> {
        serde_json::from_str(json)
    }
}

impl Command for GetFd<'_> {
    const NAME: &'static str = "getfd";
    const HAS_ARGUMENTS: bool = true;
    const ALLOW_OOB: bool = false;
    const SUCCESS_RESPONSE: bool = true;
    type Returns = ();
    fn write_arguments(&self, out: &mut Vec<u8>) -> Result<(), serde_json::Error> {
        #[derive(Serialize)]
        struct Args<'a> {
            fdname: &'a str,
        }
        serde_json::to_writer(out, &Args { fdname: self.0 })
    }
    fn decode_return(_: &str) -> Result<(), serde_json::Error> {
        Ok(())
    }
}

impl Command for AddFd<'_> {
    const NAME: &'static str = "add-fd";
    const HAS_ARGUMENTS: bool = true;
    const ALLOW_OOB: bool = false;
    const SUCCESS_RESPONSE: bool = true;
    type Returns = AddFdInfo;
    fn write_arguments(&self, out: &mut Vec<u8>) -> Result<(), serde_json::Error> {
        serde_json::to_writer(out, self)
    }
    fn decode_return(json: &str) -> Result<AddFdInfo, serde_json::Error> {
        serde_json::from_str(json)
    }
}

impl Command for QuerySchema {
    const NAME: &'static str = introspect::COMMAND;
    const HAS_ARGUMENTS: bool = false;
    const ALLOW_OOB: bool = false;
    const SUCCESS_RESPONSE: bool = true;
    type Returns = ServerSchema;
    fn write_arguments(&self, _: &mut Vec<u8>) -> Result<(), serde_json::Error> {
        Ok(())
    }
    fn decode_return(json: &str) -> Result<ServerSchema, serde_json::Error> {
        ServerSchema::from_json(json)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn args<C: Command>(c: &C) -> String {
        let mut out = Vec::new();
        c.write_arguments(&mut out).unwrap();
        String::from_utf8(out).unwrap()
    }

    #[test]
    fn arguments_are_what_qemu_expects() {
        assert_eq!(
            args(&Hmp("info status")),
            r#"{"command-line":"info status"}"#
        );
        assert_eq!(args(&GetFd("mig")), r#"{"fdname":"mig"}"#);
        let all = AddFd {
            fdset_id: Some(3),
            opaque: Some("disk"),
        };
        assert_eq!(args(&all), r#"{"fdset-id":3,"opaque":"disk"}"#);
        let none = AddFd {
            fdset_id: None,
            opaque: None,
        };
        assert_eq!(args(&none), "{}");
        assert_eq!(
            AddFd::decode_return(r#"{"fdset-id": 1, "fd": 9}"#).unwrap(),
            AddFdInfo { fdset_id: 1, fd: 9 }
        );
    }
}
