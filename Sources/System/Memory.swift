import CLinux
import Glibc

/// Raw heap calls.
public enum Memory {
    /// Mallocs `chunkBytes` at a time, writing every byte so each page is really backed, until malloc returns
    /// NULL; then frees everything and returns how many chunks it got.
    ///
    /// Nothing Swift-side is allocated while the heap is full: the chunks form a linked list through their own
    /// first word, so neither an array's growth nor the runtime can be the allocation that hits the limit.
    public static func allocateUntilExhausted(chunkBytes: Int) -> Int {
        precondition(chunkBytes >= MemoryLayout<UnsafeMutableRawPointer?>.size, "chunk too small for a link")
        var newest: UnsafeMutableRawPointer? = nil
        var count = 0
        while let chunk = malloc(chunkBytes) {
            memset(chunk, 0x5A, chunkBytes)
            chunk.storeBytes(of: newest, as: UnsafeMutableRawPointer?.self)
            newest = chunk
            count += 1
        }
        while let chunk = newest {
            newest = chunk.load(as: UnsafeMutableRawPointer?.self)
            free(chunk)
        }
        return count
    }

    /// malloc_trim(3): hands free heap pages back to the system (after a large one-off allocation).
    public static func trim() {
        _ = c_malloc_trim()
    }
}
