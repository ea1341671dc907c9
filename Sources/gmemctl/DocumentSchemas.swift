import Foundation

/// JSON Schemas (draft 2020-12) of the documents `--output json` prints, kept beside the types that encode
/// them; tests check real output against them.
enum DocumentSchemas {
    static let names = ["plan", "diff", "get", "apply", "run", "events", "error"]

    static func schema(named name: String) -> String? {
        guard let root = roots[name] else { return nil }
        return """
            {
              "$schema": "https://json-schema.org/draft/2020-12/schema",
              "$id": "https://gmemctl.dev/schema/\(name)-document.json",
              "title": "gmemctl \(name) document (formatVersion 1.0)",
              \(root),
              "$defs": {\(definitions)}
            }
            """
    }

    private static let roots: [String: String] = [
        "plan": ##""$ref": "#/$defs/plan""##,
        "diff": ##"""
        "type": "object", "additionalProperties": false,
        "required": ["formatVersion", "host", "guest", "changes", "replacements", "destroysData", "entries"],
        "properties": {
          "formatVersion": {"const": "1.0"}, "host": {"type": "string"}, "guest": {"type": "string"},
          "changes": {"type": "boolean"}, "destroysData": {"type": "boolean"},
          "replacements": {"type": "array", "items": {"$ref": "#/$defs/replacement"}},
          "entries": {"type": "array", "items": {
            "type": "object", "additionalProperties": false,
            "required": ["change", "kind", "name", "gpaRanges", "replace", "destroysData"],
            "properties": {
              "change": {"enum": ["missing", "extra", "changed"]},
              "kind": {"enum": ["vm", "block", "mapping", "range", "listener"]},
              "name": {"type": "string"}, "expected": {"type": "string"}, "actual": {"type": "string"},
              "gpaRanges": {"type": "array", "items": {"type": "string"}},
              "replace": {"type": "boolean"}, "destroysData": {"type": "boolean"}
            }}}
        }
        """##,
        "get": ##"""
        "type": "object", "additionalProperties": false, "required": ["formatVersion", "host", "guests"],
        "properties": {
          "formatVersion": {"const": "1.0"}, "host": {"type": "string"},
          "guests": {"type": "array", "items": {"type": "object", "additionalProperties": false, "required": ["live"],
                                                 "properties": {"live": {"$ref": "#/$defs/live"}}}}
        }
        """##,
        "apply": ##"""
        "type": "object", "additionalProperties": false,
        "required": ["formatVersion", "host", "guest", "changes", "succeeded", "plan", "report", "live"],
        "properties": {
          "formatVersion": {"const": "1.0"}, "host": {"type": "string"}, "guest": {"type": "string"},
          "changes": {"type": "boolean"}, "succeeded": {"type": "boolean"},
          "plan": {"$ref": "#/$defs/plan"}, "report": {"$ref": "#/$defs/report"}, "live": {"$ref": "#/$defs/live"},
          "verification": {"type": "object", "additionalProperties": false, "required": ["passed", "checks", "skipped"],
            "properties": {
              "passed": {"type": "boolean"}, "skipped": {"type": "array", "items": {"type": "string"}},
              "checks": {"type": "array", "items": {"type": "object", "additionalProperties": false,
                "required": ["kind", "block", "gpa", "expected", "observed", "passed"],
                "properties": {"kind": {"enum": ["host-access", "guest-access"]}, "block": {"type": "string"},
                               "gpa": {"type": "integer"}, "expected": {"type": "string"}, "observed": {"type": "string"},
                               "passed": {"type": "boolean"}}}}
            }},
          "teardown": {"$ref": "#/$defs/report"}
        }
        """##,
        "run": ##"""
        "type": "object", "additionalProperties": false,
        "required": ["formatVersion", "host", "guest", "succeeded", "plan", "report"],
        "properties": {
          "formatVersion": {"const": "1.0"}, "host": {"type": "string"}, "guest": {"type": "string"},
          "succeeded": {"type": "boolean"}, "plan": {"$ref": "#/$defs/plan"}, "report": {"$ref": "#/$defs/report"}
        }
        """##,
        "events":
            ##""description": "One document per line.", "allOf": [{"$ref": "#/$defs/event"}], "required": ["formatVersion"]"##,
        "error": ##"""
        "type": "object", "additionalProperties": false, "required": ["formatVersion", "error"],
        "properties": {
          "formatVersion": {"const": "1.0"},
          "error": {"type": "object", "additionalProperties": false, "required": ["code", "message"],
            "properties": {
              "code": {"enum": ["invalid-manifest", "not-found", "replace-refused", "rejected", "unavailable", "failed", "usage"]},
              "message": {"type": "string"},
              "diagnostics": {"type": "array", "items": {"type": "object", "required": ["severity", "summary", "detail", "path", "range"],
                "properties": {"severity": {"enum": ["error", "warning"]}, "summary": {"type": "string"},
                               "detail": {"type": "string"}, "path": {"type": "string"}, "range": {"type": "object"}}}},
              "replacements": {"type": "array", "items": {"$ref": "#/$defs/replacement"}}
            }}
        }
        """##,
    ]

    private static let definitions = ##"""
        "plan": {"type": "object", "additionalProperties": false,
          "required": ["formatVersion", "host", "guest", "changes", "replacements", "destroysData", "resolutions", "transitions", "operations", "notes"],
          "properties": {
            "formatVersion": {"const": "1.0"}, "host": {"type": "string"}, "guest": {"type": "string"},
            "changes": {"type": "boolean"}, "destroysData": {"type": "boolean"},
            "replacements": {"type": "array", "items": {"$ref": "#/$defs/replacement"}},
            "resolutions": {"type": "object", "additionalProperties": {"type": "string"}},
            "transitions": {"type": "array", "items": {"type": "object", "additionalProperties": false,
              "required": ["block", "offset", "size", "to", "gpaRanges"],
              "properties": {"block": {"type": "string"}, "offset": {"type": "integer"}, "size": {"type": "integer"},
                             "from": {"enum": ["private", "shared"]}, "to": {"enum": ["private", "shared"]},
                             "gpaRanges": {"type": "array", "items": {"type": "array", "items": {"type": "integer"}}}}}},
            "operations": {"type": "array", "items": {"type": "object", "additionalProperties": false,
              "required": ["op", "call", "arguments"],
              "properties": {
                "op": {"enum": ["createVM", "createGuestMemfd", "createSharedBacking", "mapHostMemory", "bindMemslot",
                                "deleteMemslot", "setVMAttributes", "convertGuestMemfd", "discard", "populate", "notify",
                                "destroyBlock", "destroyVM"]},
                "call": {"type": "string"}, "arguments": {"type": "string"}, "block": {"type": "string"},
                "slot": {"type": "integer"}, "listener": {"type": "string"}, "gpa": {"type": "integer"},
                "offset": {"type": "integer"}, "size": {"type": "integer"}}}},
            "notes": {"type": "array", "items": {"type": "string"}}
          }},
        "replacement": {"type": "object", "additionalProperties": false,
          "required": ["block", "replace", "reason", "changes", "destroysData", "lost"],
          "properties": {"block": {"type": "string"}, "replace": {"const": true},
                         "reason": {"enum": ["changed", "incomplete", "removed"]},
                         "changes": {"type": "array", "items": {"type": "string"}},
                         "destroysData": {"type": "boolean"}, "lost": {"type": "string"}}},
        "report": {"type": "object", "additionalProperties": false,
          "required": ["succeeded", "completed", "total", "retries", "notRun", "compensations"],
          "properties": {"succeeded": {"type": "boolean"}, "completed": {"type": "integer"}, "total": {"type": "integer"},
                         "retries": {"type": "integer"}, "failure": {"type": "string"}, "errorOffset": {"type": "integer"},
                         "notRun": {"type": "array", "items": {"type": "string"}},
                         "compensations": {"type": "array", "items": {"$ref": "#/$defs/event"}}}},
        "event": {"type": "object", "additionalProperties": false,
          "required": ["guest", "sequence", "listener", "kind", "gpa", "size"],
          "properties": {"formatVersion": {"const": "1.0"}, "guest": {"type": "string"}, "sequence": {"type": "integer"},
                         "listener": {"type": "string"}, "kind": {"enum": ["map", "unmap"]},
                         "gpa": {"type": "integer"}, "size": {"type": "integer"}}},
        "live": {"type": "object", "additionalProperties": false,
          "required": ["name", "exists", "blocks", "memslots", "listeners", "eventCount"],
          "properties": {
            "name": {"type": "string"}, "exists": {"type": "boolean"},
            "vmType": {"enum": ["default", "sw-protected", "sev-snp", "tdx"]}, "vmFD": {"type": "integer"},
            "listeners": {"type": "array", "items": {"type": "string"}}, "eventCount": {"type": "integer"},
            "lastFailure": {"type": "string"},
            "blocks": {"type": "array", "items": {"type": "object", "additionalProperties": false,
              "required": ["name", "size", "backend", "guestMemfdFlags", "layout"],
              "properties": {
                "name": {"type": "string"}, "size": {"type": "integer"}, "guestMemfdFlags": {"type": "integer"},
                "guestMemfd": {"type": "integer"}, "guestMemfdAddress": {"type": "integer"}, "sharedFD": {"type": "integer"},
                "sharedAddress": {"type": "integer"}, "residentBytes": {"type": "integer"},
                "backend": {"type": "object", "additionalProperties": false, "required": ["type"],
                  "properties": {"type": {"enum": ["legacy", "in-place"]},
                                 "shared": {"type": "object", "additionalProperties": false, "required": ["source", "prealloc"],
                                   "properties": {"source": {"enum": ["anonymous", "memfd", "hugetlb"]},
                                                  "pageSize": {"type": "integer"}, "prealloc": {"type": "boolean"}}}}},
                "layout": {"type": "array", "items": {"type": "object", "additionalProperties": false,
                  "required": ["offset", "size", "state"],
                  "properties": {"offset": {"type": "integer"}, "size": {"type": "integer"}, "state": {"enum": ["private", "shared"]}}}}
              }}},
            "memslots": {"type": "array", "items": {"type": "object", "additionalProperties": false,
              "required": ["slot", "block", "offset", "size", "gpa", "flags", "userspaceAddress"],
              "properties": {"slot": {"type": "integer"}, "block": {"type": "string"}, "offset": {"type": "integer"},
                             "size": {"type": "integer"}, "gpa": {"type": "integer"}, "flags": {"type": "integer"},
                             "userspaceAddress": {"type": "integer"}}}}
          }}
        """##
}
