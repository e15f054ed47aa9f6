import { ServerConnection } from '@jupyterlab/services';
import { VDomModel } from '@jupyterlab/ui-components';

import { errorMessage } from './api-client';
import { fetchAPI, requestAPI } from './request';

/**
 * The two agents (`models.AgentName`).
 */
export type AgentName = 'drift' | 'transfer';

/**
 * Where an agent's statement comes from (`models.Citation`).
 */
export interface ICitation {
  /**
   * A workspace path (notebook, experiment log, requirements file),
   * `snapshot:<id>`, `drift-events` or `install-history`.
   */
  source: string;

  /**
   * `cell N` (from 0), `line N` (from 1) or `event N`.
   */
  locator: string;

  /**
   * Set for the lab's memory (the hub service): whose environment's snapshot
   * holds the source, which is then `<environment_id>/<path>`.
   */
  environment_id?: string | null;

  /**
   * Set for the lab's memory: the snapshot holding the cited bytes.
   */
  snapshot_id?: string | null;
}

/**
 * `POST chat` body (`models.ChatRequest`).
 */
export interface IChatRequest {
  /**
   * Which agent answers.
   */
  agent: AgentName;

  /**
   * The question.
   */
  question: string;

  /**
   * The conversation to continue; omitted to start one.
   */
  conversation_id?: string | null;
}

/**
 * One line of the `POST chat` stream (`models.ChatChunk`).
 */
export interface IChatChunk {
  /**
   * `start`, `tool` (a tool ran), `delta` (a piece of text), `done` or
   * `error`.
   */
  type: 'start' | 'tool' | 'delta' | 'done' | 'error';

  /**
   * The conversation (start and done).
   */
  conversation_id?: string | null;

  /**
   * The agent (start and done).
   */
  agent?: string | null;

  /**
   * A tool's name (tool).
   */
  name?: string | null;

  /**
   * How a tool call went (tool).
   */
  status?: 'ok' | 'error' | 'refused' | null;

  /**
   * What went wrong (tool, error).
   */
  message?: string | null;

  /**
   * The next piece of the answer (delta).
   */
  text?: string | null;

  /**
   * The whole answer (done).
   */
  answer?: string | null;

  /**
   * What supports the answer (done).
   */
  citations?: ICitation[] | null;

  /**
   * The tools the agent ran (done).
   */
  tools_called?: string[] | null;

  /**
   * Tool calls the agent was refused (done).
   */
  refused?: string[] | null;

  /**
   * `timeout` or `provider` when the model failed (done).
   */
  error?: string | null;
}

/**
 * One of the environment's conversations (`models.ConversationSummary`).
 */
export interface IConversationSummary {
  /**
   * Conversation id.
   */
  id: string;

  /**
   * The agent it was started with.
   */
  agent: AgentName;

  /**
   * Its first question.
   */
  title: string;

  /**
   * When it started (epoch seconds).
   */
  created: number;

  /**
   * When it last changed (epoch seconds).
   */
  updated: number;
}

/**
 * A stored turn of a conversation (`models.ChatMessage`).
 */
export interface IStoredMessage {
  /**
   * When it was said (epoch seconds).
   */
  time: number;

  /**
   * Who said it.
   */
  role: 'user' | 'assistant';

  /**
   * The text.
   */
  content: string;

  /**
   * What supports an answer.
   */
  citations: ICitation[];

  /**
   * Tools the agent ran for it.
   */
  tools_called: string[];
}

/**
 * `GET chat/{id}` (`models.Conversation`).
 */
export interface IConversation extends IConversationSummary {
  /**
   * Its messages, oldest first.
   */
  messages: IStoredMessage[];
}

/**
 * A message as the chat panel shows it.
 */
export interface IChatMessage {
  /**
   * Who says it.
   */
  role: 'user' | 'assistant';

  /**
   * The text so far.
   */
  content: string;

  /**
   * What supports it (once the answer is done).
   */
  citations: ICitation[];

  /**
   * Tools run so far, with how each went.
   */
  tools: { name: string; status: string }[];

  /**
   * True while the answer is still streaming.
   */
  pending: boolean;

  /**
   * Set when the answer failed (`timeout`, `provider` or a message).
   */
  error?: string;
}

/**
 * Split a stream of bytes into complete lines of newline-delimited JSON.
 */
export class NDJSONReader {
  /**
   * Add bytes; returns the objects of every line they complete.
   *
   * @param text Decoded text, any length, possibly mid-line
   * @returns The parsed objects, in order
   */
  push(text: string): IChatChunk[] {
    this._buffer += text;
    const lines = this._buffer.split('\n');
    this._buffer = lines.pop() ?? '';
    return lines.filter(line => line.trim()).map(line => JSON.parse(line));
  }

  /**
   * The objects of a last line the stream did not end with a newline.
   */
  flush(): IChatChunk[] {
    const rest = this._buffer.trim();
    this._buffer = '';
    return rest ? [JSON.parse(rest)] : [];
  }

  private _buffer = '';
}

/**
 * The chat with the agents: the chosen agent, the current conversation and
 * its messages (the last one streaming), and the environment's conversation
 * history. Emits `stateChanged` on every change; views never talk HTTP.
 */
export class ChatModel extends VDomModel {
  /**
   * Create a chat calling the given server.
   *
   * @param serverSettings The Jupyter server's settings (auth, XSRF)
   */
  constructor(serverSettings?: ServerConnection.ISettings) {
    super();
    this._settings = serverSettings ?? ServerConnection.makeSettings();
  }

  /**
   * The agent that answers the next question.
   */
  get agent(): AgentName {
    return this._agent;
  }
  set agent(agent: AgentName) {
    if (agent !== this._agent) {
      this._agent = agent;
      this.stateChanged.emit();
    }
  }

  /**
   * The conversation being continued, or null for a new one.
   */
  get conversationId(): string | null {
    return this._conversationId;
  }

  /**
   * The messages of the current conversation, oldest first.
   */
  get messages(): readonly IChatMessage[] {
    return this._messages;
  }

  /**
   * True while an answer streams.
   */
  get busy(): boolean {
    return this._busy;
  }

  /**
   * The environment's conversations, most recent first.
   */
  get conversations(): readonly IConversationSummary[] {
    return this._conversations;
  }

  /**
   * What last went wrong loading the history, if anything.
   */
  get error(): string | null {
    return this._error;
  }

  /**
   * Start a new conversation (the next question opens it).
   */
  newConversation(): void {
    this._conversationId = null;
    this._messages = [];
    this.stateChanged.emit();
  }

  /**
   * Load the environment's conversation history.
   */
  async loadConversations(): Promise<void> {
    try {
      const list = await requestAPI<{ conversations: IConversationSummary[] }>(
        'chat',
        {},
        this._settings
      );
      this._conversations = list.conversations;
      this._error = null;
    } catch (error) {
      this._error = errorMessage(error);
    }
    this.stateChanged.emit();
  }

  /**
   * Show a past conversation, to read or continue.
   *
   * @param id The conversation's id
   */
  async openConversation(id: string): Promise<void> {
    try {
      const conversation = await requestAPI<IConversation>(
        `chat/${encodeURIComponent(id)}`,
        {},
        this._settings
      );
      this._conversationId = conversation.id;
      this._agent = conversation.agent;
      this._messages = conversation.messages.map(m => ({
        role: m.role,
        content: m.content,
        citations: m.citations,
        tools: m.tools_called.map(name => ({ name, status: 'ok' })),
        pending: false
      }));
      this._error = null;
    } catch (error) {
      this._error = errorMessage(error);
    }
    this.stateChanged.emit();
  }

  /**
   * Ask a question in a new conversation with the given agent (the drift
   * panel's "why?" does this).
   *
   * @param agent Which agent answers
   * @param question The question
   */
  async askNew(agent: AgentName, question: string): Promise<void> {
    this.newConversation();
    this.agent = agent;
    await this.sendMessage(question);
  }

  /**
   * Send a question to the current agent and stream its answer in.
   *
   * @param question The researcher's question
   */
  async sendMessage(question: string): Promise<void> {
    const text = question.trim();
    if (!text || this._busy) {
      return;
    }
    const answer: IChatMessage = {
      role: 'assistant',
      content: '',
      citations: [],
      tools: [],
      pending: true
    };
    this._messages = [
      ...this._messages,
      { role: 'user', content: text, citations: [], tools: [], pending: false },
      answer
    ];
    this._busy = true;
    this.stateChanged.emit();
    const body: IChatRequest = {
      agent: this._agent,
      question: text,
      conversation_id: this._conversationId
    };
    try {
      await this._stream(body, chunk => this._apply(answer, chunk));
    } catch (error) {
      answer.error = errorMessage(error);
    } finally {
      answer.pending = false;
      this._busy = false;
      this._messages = [...this._messages];
      this.stateChanged.emit();
      void this.loadConversations();
    }
  }

  private _apply(answer: IChatMessage, chunk: IChatChunk): void {
    switch (chunk.type) {
      case 'start':
        this._conversationId = chunk.conversation_id ?? this._conversationId;
        break;
      case 'tool':
        answer.tools = [
          ...answer.tools,
          { name: chunk.name ?? '?', status: chunk.status ?? 'ok' }
        ];
        break;
      case 'delta':
        answer.content += chunk.text ?? '';
        break;
      case 'done':
        answer.content = chunk.answer ?? answer.content;
        answer.citations = chunk.citations ?? [];
        if (chunk.error) {
          answer.error = chunk.error;
        }
        break;
      case 'error':
        answer.error = chunk.message ?? 'the agent failed';
        break;
    }
    this._messages = [...this._messages];
    this.stateChanged.emit();
  }

  private async _stream(
    body: IChatRequest,
    onChunk: (chunk: IChatChunk) => void
  ): Promise<void> {
    const response = await fetchAPI(
      'chat',
      { method: 'POST', body: JSON.stringify(body) },
      this._settings
    );
    const reader = new NDJSONReader();
    const decoder = new TextDecoder();
    const stream = response.body?.getReader();
    if (!stream) {
      reader.push(await response.text());
    } else {
      for (;;) {
        const { done, value } = await stream.read();
        if (done) {
          break;
        }
        reader.push(decoder.decode(value, { stream: true })).forEach(onChunk);
      }
    }
    reader.flush().forEach(onChunk);
  }

  private _settings: ServerConnection.ISettings;
  private _agent: AgentName = 'transfer';
  private _conversationId: string | null = null;
  private _messages: IChatMessage[] = [];
  private _busy = false;
  private _conversations: IConversationSummary[] = [];
  private _error: string | null = null;
}

/**
 * What a citation points at, for the panel to open it.
 *
 * @param citation A citation of an answer
 * @returns A notebook cell, a file line, a snapshot, or the drift history
 */
export function citationTarget(citation: ICitation):
  | { kind: 'notebook'; path: string; cell: number }
  | {
      kind: 'preserved';
      environmentId: string;
      snapshotId: string;
      path: string;
      cell: number;
    }
  | { kind: 'file'; path: string; line: number }
  | { kind: 'snapshot'; id: string; line: number }
  | { kind: 'drift' } {
  const number = Number(/(\d+)/.exec(citation.locator)?.[1] ?? 0);
  const environment = citation.environment_id;
  if (
    environment &&
    citation.snapshot_id &&
    citation.source.startsWith(`${environment}/`) &&
    citation.source.endsWith('.ipynb')
  ) {
    // the lab's memory: a notebook of a snapshot, wherever the reader works
    return {
      kind: 'preserved',
      environmentId: environment,
      snapshotId: citation.snapshot_id,
      path: citation.source.slice(environment.length + 1),
      cell: number
    };
  }
  if (citation.source.startsWith('snapshot:')) {
    return {
      kind: 'snapshot',
      id: citation.source.slice('snapshot:'.length),
      line: number
    };
  }
  if (
    citation.source === 'drift-events' ||
    citation.source === 'install-history'
  ) {
    return { kind: 'drift' };
  }
  if (citation.source.endsWith('.ipynb')) {
    return { kind: 'notebook', path: citation.source, cell: number };
  }
  return { kind: 'file', path: citation.source, line: number };
}
