import Glibc
import IPC
import Testing

/// Every input of the frame fuzz corpus (fuzz/frames/corpus) and every input the fuzzer once crashed on
/// (fuzz/frames/regressions) goes through the same calls as the fuzz target (fuzz/frames/main.swift): the
/// first byte chooses where the stream is cut in two, `next()` is drained after each piece, and every message
/// must re-encode to the frame it came from and decode back to itself.
@Suite struct FrameCorpusTests {
    /// The repository's root, found from this file's path.
    static let root = String(#filePath.split(separator: "/Tests/").first!)

    /// The files of fuzz/frames/corpus and fuzz/frames/regressions, relative to the root.
    static let inputs: [String] = ["corpus", "regressions"].flatMap { folder -> [String] in
        let directory = "fuzz/frames/\(folder)"
        guard let stream = opendir(root + "/" + directory) else { return [] }
        defer { closedir(stream) }
        var names: [String] = []
        while let entry = readdir(stream) {
            let name = withUnsafeBytes(of: entry.pointee.d_name) { String(decoding: $0.prefix { $0 != 0 }, as: UTF8.self) }
            if name != "." && name != ".." { names.append(directory + "/" + name) }
        }
        return names.sorted()
    }

    static func read(_ path: String) -> [UInt8]? {
        guard let file = fopen(root + "/" + path, "rb") else { return nil }
        defer { fclose(file) }
        var bytes: [UInt8] = []
        var chunk = [UInt8](repeating: 0, count: 65536)
        while true {
            let count = fread(&chunk, 1, chunk.count, file)
            bytes.append(contentsOf: chunk[0..<count])
            if count < chunk.count { return bytes }
        }
    }

    @Test func corpusHasSeeds() {
        #expect(Self.inputs.filter { $0.contains("/corpus/") }.count >= 10)
    }

    @Test(arguments: inputs)
    func frameInput(path: String) throws {
        let input = try #require(Self.read(path))
        guard let control = input.first else { return }
        let stream = Array(input.dropFirst())
        let split = Int(control) % (stream.count + 1)
        var decoder = FrameDecoder()
        var frames = FrameDecoder()
        for piece in [stream[..<split], stream[split...]] {
            decoder.append(piece)
            frames.append(piece)
            guard try drain(&decoder, &frames) else { return }
        }
    }

    /// Takes every whole message out of `decoder`; false once it threw.
    private func drain(_ decoder: inout FrameDecoder, _ frames: inout FrameDecoder) throws -> Bool {
        while true {
            let message: Message?
            do throws(FrameError) {
                message = try decoder.next()
            } catch {
                _ = error.description
                return false
            }
            guard let message else { return true }
            let (kind, body) = try #require(try frames.nextFrame())
            var original: [UInt8] = []
            FrameHeader(kind: kind, length: UInt32(body.count)).encode(into: &original)
            original.append(contentsOf: body)
            let encoded = message.encoded
            #expect(encoded == original, "re-encoding \(message.kind) changed its bytes")
            var again = FrameDecoder()
            again.append(encoded)
            #expect(try again.next() == message)
            #expect(try again.next() == nil && again.bufferedByteCount == 0)
        }
    }
}
