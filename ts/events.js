"use strict";
Object.defineProperty(exports, "__esModule", { value: true });
exports.register = register;
exports.unregister = unregister;
// The JavaScript end of the event path: one callback per engine batch walks the flat records and
// hands each to the transport, server or pending connect that owns its id.
const loop_1 = require("./loop");
const native_1 = require("./native");
const sinks = new Map();
function register(id, sink) {
    sinks.set(id, sink);
}
function unregister(id) {
    sinks.delete(id);
}
function onEvents(records, payload) {
    let offset = 0;
    for (let i = 0; i < records.length; i += 4) {
        const kind = records[i];
        const a = records[i + 2];
        let data = null;
        if (kind === 1 /* EventKind.Data */) {
            data = payload.subarray(offset, offset + a);
            offset += a;
        }
        const sink = sinks.get(records[i + 1]);
        if (sink === undefined)
            continue;
        try {
            sink._onEvent(kind, a, records[i + 3], data);
        }
        catch (exc) {
            // Sinks route protocol errors themselves; anything reaching here is a bug of ours, and it must
            // not take the rest of the batch (or the process) down with it.
            (0, loop_1.getRunningLoop)().callExceptionHandler({ message: 'protoloop: internal error while dispatching an event', exception: exc });
        }
    }
}
native_1.native.init(onEvents);
//# sourceMappingURL=events.js.map