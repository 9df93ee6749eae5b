// libFuzzer target: the worker protocol's frame decoder (fuzz/README.md).
//
// Input: one control byte, then the bytes a peer sent. The bytes arrive in two pieces, split at
// (control byte) % (count + 1); after each piece `next()` is drained until nil or an error. Every message
// decoded must re-encode to exactly the frame it came from (checked through `nextFrame()` on a second
// decoder fed the same pieces), and that encoding must decode to an equal message.

import IPC

@_cdecl("LLVMFuzzerTestOneInput")
public func fuzz(_ data: UnsafePointer<UInt8>, _ count: Int) -> CInt {
    guard count > 0 else { return 0 }
    let stream = Array(UnsafeBufferPointer(start: data + 1, count: count - 1))
    let split = Int(data[0]) % (stream.count + 1)
    var decoder = FrameDecoder()
    var frames = FrameDecoder()
    for piece in [stream[..<split], stream[split...]] {
        decoder.append(piece)
        frames.append(piece)
        guard drain(&decoder, &frames) else { return 0 }
    }
    return 0
}

/// Takes every whole message out of `decoder`; false once it threw (the stream is then unusable).
private func drain(_ decoder: inout FrameDecoder, _ frames: inout FrameDecoder) -> Bool {
    while true {
        let message: Message?
        do throws(FrameError) {
            message = try decoder.next()
        } catch {
            _ = error.description
            return false
        }
        guard let message else { return true }
        // The same frame, undecoded: its header and body.
        guard let (kind, body) = try? frames.nextFrame() else { fatalError("next() gave a message, nextFrame() none") }
        var original: [UInt8] = []
        FrameHeader(kind: kind, length: UInt32(body.count)).encode(into: &original)
        original.append(contentsOf: body)
        let encoded = message.encoded
        precondition(encoded == original, "re-encoding \(message.kind) changed its bytes")
        var again = FrameDecoder()
        again.append(encoded)
        do throws(FrameError) {
            let first = try again.next()
            let second = try again.next()
            precondition(first == message, "re-encoded \(message.kind) decodes to another message")
            precondition(second == nil && again.bufferedByteCount == 0, "re-encoded \(message.kind): bytes left over")
        } catch {
            fatalError("re-encoded \(message.kind) does not decode: \(error)")
        }
    }
}
