/**
 * One test process for every spec: synthesizing a stage takes seconds, so all specs share
 * the per-process cache of `synthStage` instead of each synthesizing both stages again.
 */
import './config.spec';
import './validation.spec';
import './storage.spec';
import './lab-isolation.spec';
import './hub-permissions.spec';
import './stacks.spec';
import './outputs.spec';
