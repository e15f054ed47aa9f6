import { Search } from '@jupyter/react-components';
import { TranslationBundle } from '@jupyterlab/translation';
import { Table } from '@jupyterlab/ui-components';
import React from 'react';

/**
 * A search box over a sortable table of packages, with a line saying how many
 * rows match and how many are shown: the Environment tab's and a snapshot's
 * details share it.
 */
export function SearchableTable<
  T extends { name: string; interpreter: string }
>(props: SearchableTable.IProps<T>): JSX.Element {
  const { rows, trans } = props;
  const shown = rows.slice(0, props.maxRows);
  return (
    <>
      <Search
        className="jp-WestTek-search"
        data-testid={props.searchTestId}
        placeholder={props.placeholder}
        aria-label={trans.__('Search packages')}
        value={props.filter}
        onInput={(event: any) =>
          props.setFilter(String(event.target?.value ?? ''))
        }
        onChange={(event: any) =>
          props.setFilter(String(event.target?.value ?? ''))
        }
      />
      <div className="jp-WestTek-muted jp-WestTek-tableNote">
        {props.filter
          ? trans.__('%1 of %2 packages match', rows.length, props.total)
          : trans._n('%1 package', '%1 packages', rows.length)}
        {rows.length > shown.length &&
          ' · ' +
            trans.__(
              'showing the first %1, search to narrow down',
              shown.length
            )}
      </div>
      {shown.length ? (
        <div className={props.tableClassName} data-testid={props.tableTestId}>
          <Table<T>
            rows={shown.map(row => ({
              key: `${row.interpreter}/${row.name}`,
              data: row
            }))}
            columns={props.columns}
            sortKey="name"
            blankIndicator={() => null}
          />
        </div>
      ) : (
        <p className="jp-WestTek-empty">{trans.__('No package matches.')}</p>
      )}
    </>
  );
}

/**
 * The namespace for `SearchableTable` statics.
 */
export namespace SearchableTable {
  /**
   * What the table shows and how it is searched.
   */
  export interface IProps<T> {
    /**
     * The rows matching the filter, in any order (the table sorts them).
     */
    rows: readonly T[];

    /**
     * How many rows there are without the filter.
     */
    total: number;

    /**
     * The search text.
     */
    filter: string;

    /**
     * Called with the new search text as the researcher types.
     */
    setFilter: (filter: string) => void;

    /**
     * The table's columns.
     */
    columns: Table.IColumn<T>[];

    /**
     * At most this many rows are rendered.
     */
    maxRows: number;

    /**
     * The search box's placeholder.
     */
    placeholder: string;

    /**
     * Test ids of the search box and the table.
     */
    searchTestId: string;
    tableTestId: string;

    /**
     * The class of the table's wrapper.
     */
    tableClassName: string;

    /**
     * Translation bundle of the `westtek` domain.
     */
    trans: TranslationBundle;
  }
}
