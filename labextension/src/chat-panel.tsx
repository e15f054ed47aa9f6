import { Button } from '@jupyter/react-components';
import { JupyterFrontEnd } from '@jupyterlab/application';
import { Dialog, showDialog } from '@jupyterlab/apputils';
import { TranslationBundle } from '@jupyterlab/translation';
import React, { useEffect, useRef, useState } from 'react';

import { errorMessage, WestTekClient } from './api-client';
import { IPreservedCell } from './tokens';
import { AgentName, ChatModel, IChatMessage, ICitation } from './chat-model';
import { PanelError, useModel } from './components';
import { formatTime } from './format';

/**
 * The Chat panel: choose an agent, ask, watch the answer stream in with the
 * tools it ran, open its citations (a notebook at the cell, a log or a
 * manifest), and go back to the environment's earlier conversations.
 */
export function ChatPanel(props: {
  model: ChatModel;
  openCitation: (citation: ICitation) => void;
  trans: TranslationBundle;
}): JSX.Element {
  const model = useModel(props.model);
  const { trans } = props;
  const [question, setQuestion] = useState('');
  const end = useRef<HTMLDivElement>(null);
  useEffect(() => {
    void model.loadConversations();
  }, [model]);
  useEffect(() => {
    end.current?.scrollIntoView?.({ block: 'end' });
  }, [model.messages]);
  const agents: { [A in AgentName]: string } = {
    drift: trans.__('Drift Analyzer'),
    transfer: trans.__('Knowledge Transfer')
  };
  const send = () => {
    const text = question;
    setQuestion('');
    void model.sendMessage(text);
  };
  return (
    <div
      className="jp-WestTek-panel jp-WestTek-chat"
      data-testid="westtek-chat"
    >
      <div className="jp-WestTek-chatControls">
        <label className="jp-WestTek-muted">
          {trans.__('Agent')}{' '}
          <select
            className="jp-mod-styled"
            data-testid="westtek-chat-agent"
            value={model.agent}
            disabled={model.busy}
            onChange={event => {
              model.agent = event.target.value as AgentName;
            }}
          >
            {(Object.keys(agents) as AgentName[]).map(agent => (
              <option key={agent} value={agent}>
                {agents[agent]}
              </option>
            ))}
          </select>
        </label>
        <select
          className="jp-mod-styled jp-WestTek-chatHistory"
          data-testid="westtek-chat-history"
          aria-label={trans.__('Earlier conversations')}
          value={model.conversationId ?? ''}
          disabled={model.busy}
          onChange={event => {
            const id = event.target.value;
            if (id) {
              void model.openConversation(id);
            } else {
              model.newConversation();
            }
          }}
        >
          <option value="">{trans.__('New conversation')}</option>
          {model.conversations.map(c => (
            <option key={c.id} value={c.id}>
              {`${formatTime(c.updated)} · ${c.title}`}
            </option>
          ))}
        </select>
      </div>
      {model.error && <PanelError message={model.error} trans={trans} />}
      <div
        className="jp-WestTek-chatMessages"
        data-testid="westtek-chat-messages"
      >
        {model.messages.length === 0 && (
          <p className="jp-WestTek-empty">
            {model.agent === 'drift'
              ? trans.__(
                  'Ask the Drift Analyzer what changed, whether it can break your notebooks, and what to do about it.'
                )
              : trans.__(
                  'Ask about this environment: why a package is pinned, which notebook produces a figure and what it reads. Every answer cites its sources.'
                )}
          </p>
        )}
        {model.messages.map((message, index) => (
          <ChatMessageView
            key={index}
            message={message}
            openCitation={props.openCitation}
            trans={trans}
          />
        ))}
        <div ref={end} />
      </div>
      <form
        className="jp-WestTek-chatInput"
        onSubmit={event => {
          event.preventDefault();
          send();
        }}
      >
        <textarea
          className="jp-mod-styled"
          data-testid="westtek-chat-question"
          rows={3}
          placeholder={trans.__('Ask %1…', agents[model.agent])}
          value={question}
          onChange={event => setQuestion(event.target.value)}
          onKeyDown={event => {
            if (event.key === 'Enter' && !event.shiftKey) {
              event.preventDefault();
              send();
            }
          }}
        />
        <Button
          type="submit"
          appearance="accent"
          data-testid="westtek-chat-send"
          disabled={model.busy || !question.trim()}
          onClick={() => send()}
        >
          {trans.__('Ask')}
        </Button>
      </form>
    </div>
  );
}

/**
 * One message: the text, the tools the agent ran, and numbered citations.
 */
function ChatMessageView(props: {
  message: IChatMessage;
  openCitation: (citation: ICitation) => void;
  trans: TranslationBundle;
}): JSX.Element {
  const { message, trans } = props;
  return (
    <div
      className={`jp-WestTek-chatMessage jp-WestTek-mod-${message.role}`}
      data-testid="westtek-chat-message"
      data-role={message.role}
      data-pending={message.pending ? 'true' : 'false'}
    >
      {message.tools.length > 0 && (
        <div className="jp-WestTek-chatTools jp-WestTek-muted">
          {message.tools.map((tool, index) => (
            <span
              key={index}
              className={`jp-WestTek-tag jp-WestTek-mod-${tool.status}`}
              title={trans.__('Tool %1: %2', tool.name, tool.status)}
            >
              {tool.name}
            </span>
          ))}
        </div>
      )}
      <div className="jp-WestTek-chatText">
        {message.content || (message.pending ? trans.__('Thinking…') : '')}
      </div>
      {message.error && (
        <div className="jp-WestTek-jobError" role="alert">
          {message.error === 'timeout'
            ? trans.__('The model did not answer in time.')
            : message.error === 'provider'
              ? trans.__('The model provider failed.')
              : message.error}
        </div>
      )}
      {message.citations.length > 0 && (
        <ol className="jp-WestTek-citations" data-testid="westtek-citations">
          {message.citations.map((citation, index) => (
            <li key={index}>
              <button
                className="jp-WestTek-link"
                data-testid="westtek-citation"
                data-source={citation.source}
                data-locator={citation.locator}
                title={trans.__(
                  'Open %1 at %2',
                  citation.source,
                  citation.locator
                )}
                onClick={() => props.openCitation(citation)}
              >
                {`${citation.source} (${citation.locator})`}
              </button>
            </li>
          ))}
        </ol>
      )}
    </div>
  );
}

/**
 * Open a notebook and make the cited cell the active one, scrolled into view.
 *
 * @param app The application
 * @param path Notebook path, relative to the server root
 * @param cell Cell index, from 0 (as citations count)
 */
export async function openNotebookAt(
  app: JupyterFrontEnd,
  path: string,
  cell: number
): Promise<void> {
  const widget: any = await app.commands.execute('docmanager:open', { path });
  await widget?.context?.ready;
  const notebook = widget?.content;
  if (notebook && typeof notebook.activeCellIndex === 'number') {
    notebook.activeCellIndex = cell;
    if (notebook.activeCell && notebook.scrollToCell) {
      void notebook.scrollToCell(notebook.activeCell);
    }
  }
}

/**
 * A snapshot's manifest as the knowledge base numbers its lines (mirrors
 * `westtek_core.kb.documents.manifest_document`), so `line N` citations
 * point at the same line.
 *
 * @param manifest The whole manifest (`GET snapshots/{id}`)
 * @returns The lines, the first being line 1
 */
export function manifestLines(manifest: { [key: string]: any }): string[] {
  const short = String(manifest.id ?? '').slice(0, 12);
  const lines = [
    `Snapshot ${short} of environment ${manifest.environment_id} taken ${manifest.timestamp} by ${manifest.created_by}`,
    `Snapshot ${short} note: ${manifest.notes || '(none)'}`,
    ...Object.entries(manifest.labels ?? {}).map(
      ([k, v]) => `Snapshot ${short} label ${k}=${v}`
    )
  ];
  for (const interp of manifest.interpreters ?? []) {
    lines.push(
      `Interpreter ${interp.label}: Python ${interp.version} at ${interp.path}`
    );
    for (const pkg of interp.packages ?? []) {
      const how = pkg.installer || 'unknown installer';
      const asked = pkg.requested ? ', requested' : '';
      lines.push(
        `Package ${pkg.name}==${pkg.version} in ${interp.label} (installed by ${how}${asked}) in snapshot ${short}`
      );
    }
  }
  for (const kernel of manifest.kernels ?? []) {
    const spec = kernel.spec ?? {};
    lines.push(
      `Kernel ${kernel.name} (${spec.display_name}) runs ${(spec.argv ?? []).slice(0, 1).join(' ')}`
    );
  }
  for (const name of manifest.metadata?.configuration_files ?? []) {
    lines.push(`Jupyter configuration file ${name}`);
  }
  return lines;
}

/**
 * Show a snapshot's manifest in a dialog, the cited line marked.
 *
 * @param client The API client
 * @param id Snapshot id
 * @param line Cited line, from 1 (0: none)
 * @param trans Translation bundle
 */
export async function showManifestLine(
  client: WestTekClient,
  id: string,
  line: number,
  trans: TranslationBundle
): Promise<void> {
  let body: JSX.Element;
  try {
    const lines = manifestLines(await client.snapshot(id));
    body = (
      <ol className="jp-WestTek-manifestLines" data-testid="westtek-manifest">
        {lines.map((text, index) => (
          <li
            key={index}
            className={index + 1 === line ? 'jp-mod-cited' : undefined}
            ref={
              index + 1 === line
                ? el => el?.scrollIntoView?.({ block: 'center' })
                : undefined
            }
          >
            {text}
          </li>
        ))}
      </ol>
    );
  } catch (error) {
    body = <p role="alert">{errorMessage(error)}</p>;
  }
  await showDialog({
    title: trans.__('Snapshot %1', id.slice(0, 12)),
    body,
    buttons: [Dialog.okButton({ label: trans.__('Close') })]
  });
}

/**
 * Where a lab-memory citation points: an environment's snapshot, a notebook
 * in it and a cell.
 */
export interface IPreservedTarget {
  environmentId: string;
  snapshotId: string;
  path: string;
  cell: number;
}

/**
 * A preserved notebook's cells, one at a time from the cited one: a passage
 * may span several short cells, so the reader can step through them.
 *
 * @param props.client The server's API client (which asks the hub service)
 * @param props.target The citation
 * @param props.trans Translations
 * @returns The cell, where it comes from, and Previous/Next
 */
export function PreservedCellView(props: {
  client: WestTekClient;
  target: IPreservedTarget;
  trans: TranslationBundle;
}): JSX.Element {
  const { client, target, trans } = props;
  const [index, setIndex] = useState(target.cell);
  const [found, setFound] = useState<IPreservedCell | null>(null);
  const [error, setError] = useState<string | null>(null);
  useEffect(() => {
    let current = true;
    client
      .preservedCell(
        target.environmentId,
        target.snapshotId,
        target.path,
        index
      )
      .then(cell => current && (setFound(cell), setError(null)))
      .catch(reason => current && setError(errorMessage(reason)));
    return () => {
      current = false;
    };
  }, [index]);
  if (error) {
    return <p role="alert">{error}</p>;
  }
  if (!found) {
    return <p className="jp-WestTek-muted">{trans.__('Loading…')}</p>;
  }
  return (
    <div data-testid="westtek-preserved-cell" data-cell={found.cell}>
      <p className="jp-WestTek-muted">
        {trans.__(
          'Cell %1 of %2 in %3, as snapshot %4 of environment %5 (lab %6) holds it.',
          found.cell,
          found.cells,
          found.path,
          found.snapshot_id.slice(0, 12),
          found.environment_id,
          found.lab_id
        )}
      </p>
      <pre
        className="jp-WestTek-cellSource"
        data-testid="westtek-preserved-source"
      >
        {found.source}
      </pre>
      {found.outputs.map((text, position) => (
        <pre key={position} className="jp-WestTek-cellOutput">
          {text}
        </pre>
      ))}
      <div className="jp-WestTek-cellNav">
        <Button
          appearance="neutral"
          disabled={found.cell <= 0}
          data-testid="westtek-preserved-previous"
          onClick={() => setIndex(found.cell - 1)}
        >
          {trans.__('Previous cell')}
        </Button>
        <Button
          appearance="neutral"
          disabled={found.cell + 1 >= found.cells}
          data-testid="westtek-preserved-next"
          onClick={() => setIndex(found.cell + 1)}
        >
          {trans.__('Next cell')}
        </Button>
      </div>
    </div>
  );
}

/**
 * Show a cell the lab's memory cited, as the snapshot that holds it has it:
 * the predecessor's notebook need not be in the reader's workspace.
 *
 * @param client The server's API client (which asks the hub service)
 * @param target The citation's environment, snapshot, notebook and cell
 * @param trans Translations
 */
export async function showPreservedCell(
  client: WestTekClient,
  target: IPreservedTarget,
  trans: TranslationBundle
): Promise<void> {
  await showDialog({
    title: trans.__(
      '%1 of %2, cell %3',
      target.path,
      target.environmentId,
      target.cell
    ),
    body: <PreservedCellView client={client} target={target} trans={trans} />,
    buttons: [Dialog.okButton({ label: trans.__('Close') })]
  });
}
