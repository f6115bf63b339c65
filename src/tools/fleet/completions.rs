//! `POST /v1/completions`: streamed (SSE over chunked encoding) or one JSON body.
//!
//! Must never write a token before the generation holds a slot and the token is due, and
//! must leave the connection framed for the next request (or say it closes).

use serde_json::json;
use tokio::io::AsyncWriteExt;
use tokio::time::Instant;

use super::conn::{Conn, Request};
use super::generate::{token_text, GenRequest, Generation};
use super::http::{response_head, Framing};
use super::inference::Outcome;
use super::queue_time::Origin;
use super::server::Shared;
use super::sse::{completion_chunk, push_chunk, push_event, DONE_EVENT, LAST_CHUNK};

pub(crate) async fn handle(
    conn: &mut Conn,
    req: &Request,
    received: Instant,
    shared: &Shared,
) -> Outcome {
    if req.head.method != "POST" {
        return Outcome::Reject((405, "Method Not Allowed"), "use POST".to_string());
    }
    let gen_req = match GenRequest::parse(&req.body) {
        Ok(r) => r,
        Err(detail) => return Outcome::Reject((400, "Bad Request"), detail),
    };
    let need = match shared.gpu.need(&gen_req) {
        Ok(need) => need,
        Err(detail) => return Outcome::Reject((400, "Bad Request"), detail),
    };
    let framing = if req.head.http10 {
        Framing::Close
    } else {
        Framing::Chunked
    };
    // A close-delimited stream ends the connection, whatever the request asked for.
    let keep_alive = req.head.keep_alive && !(gen_req.stream && framing == Framing::Close);
    if gen_req.stream {
        // Like Starlette's StreamingResponse the head goes out at once, before the queue.
        let ctype = "text/event-stream";
        let head = response_head((200, "OK"), &shared.name, ctype, framing, keep_alive);
        if conn.stream.write_all(head.as_bytes()).await.is_err() {
            return Outcome::Drop;
        }
    }
    let gpu = &shared.gpu;
    let Some(gen) = gpu
        .admit(received, need, Origin::Client, conn.client_gone())
        .await
    else {
        return Outcome::Drop;
    };
    let result = if gen_req.stream {
        stream(conn, gen, &shared.name, framing).await
    } else {
        whole(conn, gen, &shared.name, keep_alive).await
    };
    match result {
        Ok(()) if keep_alive => Outcome::KeepAlive,
        Ok(()) => Outcome::Close,
        Err(_) => Outcome::Drop,
    }
}

async fn stream(
    conn: &mut Conn,
    mut gen: Generation,
    model: &str,
    framing: Framing,
) -> std::io::Result<()> {
    let id = format!("cmpl-{model}-{}", gen.id());
    let last = gen.total().saturating_sub(1);
    let frame = |out: &mut Vec<u8>, events: &[u8]| match framing {
        Framing::Chunked => push_chunk(out, events),
        _ => out.extend_from_slice(events),
    };
    let (mut events, mut out) = (Vec::new(), Vec::new());
    while let Some(batch) = gen.next_batch().await {
        events.clear();
        out.clear();
        for i in batch.clone() {
            push_event(
                &mut events,
                &completion_chunk(&id, model, &token_text(i), i == last),
            );
        }
        frame(&mut out, &events);
        conn.stream.write_all(&out).await?;
        gen.written(batch);
    }
    out.clear();
    frame(&mut out, DONE_EVENT);
    if framing == Framing::Chunked {
        out.extend_from_slice(LAST_CHUNK);
    }
    conn.stream.write_all(&out).await?;
    gen.finish();
    Ok(())
}

async fn whole(
    conn: &mut Conn,
    mut gen: Generation,
    model: &str,
    keep_alive: bool,
) -> std::io::Result<()> {
    let mut text = String::new();
    // Counted as generated, like an engine's counter, though the client gets them at the end.
    while let Some(batch) = gen.next_batch().await {
        batch.clone().for_each(|i| text.push_str(&token_text(i)));
        gen.written(batch);
    }
    let n = gen.total();
    let body = json!({
        "id": format!("cmpl-{model}-{}", gen.id()),
        "object": "text_completion",
        "model": model,
        "choices": [{"text": text, "index": 0, "logprobs": null, "finish_reason": "length"}],
        "usage": {"prompt_tokens": 0, "completion_tokens": n, "total_tokens": n},
    })
    .to_string();
    conn.respond(
        model,
        (200, "OK"),
        "application/json",
        body.as_bytes(),
        keep_alive,
    )
    .await?;
    gen.finish();
    Ok(())
}
